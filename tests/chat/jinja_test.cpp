// Behaviour of the Jinja interpreter beyond the shared cases: whitespace
// control, scoping, filters, tests, Python semantics, errors and limits.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "chat/jinja.h"

namespace {

using nlohmann::ordered_json;
using warden::chat::JinjaTemplate;
using warden::chat::TemplateError;
using warden::chat::TemplateLimits;
using warden::chat::TemplateSyntaxError;
using warden::chat::jinja::Dict;
using warden::chat::jinja::Value;

std::string render(const std::string& source, const ordered_json& vars = ordered_json::object(),
                   TemplateLimits limits = {}) {
  Dict d;
  for (auto it = vars.begin(); it != vars.end(); ++it) d.set(it.key(), Value::from_json(it.value()));
  return JinjaTemplate(source, limits).render(d);
}

std::string error_of(const std::string& source, const ordered_json& vars = ordered_json::object(),
                     TemplateLimits limits = {}) {
  try {
    std::string out = render(source, vars, limits);
    return "no error, output: " + out;
  } catch (const TemplateError& e) {
    return e.what();
  }
}

TEST(JinjaWhitespace, TrimBlocksEatsOneNewlineAfterBlockTags) {
  EXPECT_EQ(render("{% if true %}\nA\n{% endif %}\nB"), "A\nB");
  // Variable tags keep their newline.
  EXPECT_EQ(render("{{ 'a' }}\nb"), "a\nb");
  // Comments are block-like.
  EXPECT_EQ(render("{# c #}\nx"), "x");
}

TEST(JinjaWhitespace, LstripBlocksOnlyAtLineStart) {
  EXPECT_EQ(render("  {% if true %}x{% endif %}"), "x");
  EXPECT_EQ(render("a\n    {% if true %}x\n    {% endif %}\nb"), "a\nx\nb");
  EXPECT_EQ(render("a  {% if true %}x{% endif %}"), "a  x");
  EXPECT_EQ(render("  {%+ if true %}x{% endif %}"), "  x");
  // Not for variable tags.
  EXPECT_EQ(render("  {{ 'x' }}"), "  x");
}

TEST(JinjaWhitespace, MinusStripsAllWhitespace) {
  EXPECT_EQ(render("a  \n {%- if true -%} \n b {{- ' c ' -}}  \n d{% endif %}"), "ab c d");
  EXPECT_EQ(render("{%- if true +%}\nx{% endif %}"), "\nx");
}

TEST(JinjaWhitespace, SingleTrailingNewlineDropped) {
  EXPECT_EQ(render("x\n\n"), "x\n");
  EXPECT_EQ(render("a\r\nb"), "a\nb");
}

TEST(JinjaSyntax, RawAndComments) {
  EXPECT_EQ(render("{% raw %}{{ x }}{% endraw %}"), "{{ x }}");
  EXPECT_EQ(render("a {# {{ x }} #} b"), "a  b");
}

TEST(JinjaLoops, LoopVariables) {
  EXPECT_EQ(render("{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}"
                   "{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}"),
            "103TrueFalse3;212FalseFalse3;321FalseTrue3;");
  EXPECT_EQ(render("{% for x in [1,2,3] %}{{ loop.previtem }}-{{ loop.nextitem }},{% endfor %}"), "-2,1-3,2-,");
  EXPECT_EQ(render("{% for x in [1,2] %}{{ loop.cycle('a','b') }}{% endfor %}"), "ab");
}

TEST(JinjaLoops, FilterElseUnpackingBreak) {
  EXPECT_EQ(render("{% for x in range(10) if x is odd %}{{ x }}{{ loop.length }} {% endfor %}"), "15 35 55 75 95 ");
  EXPECT_EQ(render("{% for x in [] %}a{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", {{"d", {{"b", 1}, {"a", 2}}}}),
            "b=1;a=2;");
  EXPECT_EQ(render("{% for k, v in d|items %}{{ k }}{% endfor %}", {{"d", {{"z", 1}, {"y", 2}}}}), "zy");
  EXPECT_EQ(render("{% for x in range(10) %}{% if x == 3 %}{% break %}{% endif %}{% if x == 1 %}{% continue %}"
                   "{% endif %}{{ x }}{% endfor %}"),
            "02");
  EXPECT_EQ(render("{% for x in d %}{{ x }}{% endfor %}", {{"d", {{"k1", 1}, {"k2", 2}}}}), "k1k2");
}

TEST(JinjaScopes, SetInLoopDoesNotLeakButNamespaceDoes) {
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [1,2] %}{% set x = x + i %}{% endfor %}{{ x }}"), "1");
  EXPECT_EQ(render("{% set ns = namespace(x=1) %}{% for i in [1,2] %}{% set ns.x = ns.x + i %}{% endfor %}"
                   "{{ ns.x }}"),
            "4");
  EXPECT_EQ(render("{% if true %}{% set y = 5 %}{% endif %}{{ y }}"), "5");
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ b }}{{ a }}"), "21");
  EXPECT_EQ(render("{% set t %}in {{ 1 + 1 }}{% endset %}[{{ t }}]"), "[in 2]");
  EXPECT_EQ(render("{% with a = 3 %}{{ a }}{% endwith %}{{ a }}"), "3");
}

TEST(JinjaMacros, DefaultsKeywordsRecursionAndCaller) {
  EXPECT_EQ(render("{% macro m(a, b='B') %}{{ a }}{{ b }}{% endmacro %}{{ m(1) }}{{ m(1, b=2) }}{{ m(b=3, a=4) }}"),
            "1B1243");
  EXPECT_EQ(render("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}"), "321");
  EXPECT_EQ(render("{% macro w() %}<{{ caller() }}>{% endmacro %}{% call w() %}body{% endcall %}"), "<body>");
  EXPECT_EQ(render("{% macro m() %}{{ g }}{% endmacro %}{% set g = 'late' %}{{ m() }}"), "late");
  EXPECT_EQ(render("{% filter upper %}abc{% endfilter %}"), "ABC");
}

TEST(JinjaFilters, TojsonMatchesPythonJsonDumps) {
  ordered_json v = {{"b", 1}, {"a", {1.5, "ü\n\"", nullptr, true, 1.0}}, {"e", ordered_json::object()}};
  EXPECT_EQ(render("{{ v|tojson }}", {{"v", v}}), R"({"b": 1, "a": [1.5, "ü\n\"", null, true, 1.0], "e": {}})");
  EXPECT_EQ(render("{{ v|tojson(indent=2) }}", {{"v", {{"a", {1, 2}}}}}), "{\n  \"a\": [\n    1,\n    2\n  ]\n}");
  EXPECT_EQ(render("{{ v|tojson(separators=(',', ':')) }}", {{"v", {{"a", {1, 2}}}}}), R"({"a":[1,2]})");
  EXPECT_EQ(render("{{ v|tojson(sort_keys=true) }}", {{"v", {{"b", 1}, {"a", 2}}}}), R"({"a": 2, "b": 1})");
  EXPECT_EQ(render("{{ [0.1, 1e-05, 1e16, 123456789.0, -0.0]|tojson }}"), "[0.1, 1e-05, 1e+16, 123456789.0, -0.0]");
  EXPECT_EQ(render("{{ 'é'|tojson(ensure_ascii=true) }}"), R"("\u00e9")");
}

TEST(JinjaFilters, Common) {
  EXPECT_EQ(render("{{ '  x  '|trim }}|{{ 'xxaxx'|trim('x') }}"), "x|a");
  EXPECT_EQ(render("{{ [1,2,3]|join(', ') }}"), "1, 2, 3");
  EXPECT_EQ(render("{{ 'héllo'|length }} {{ [1,2]|length }} {{ undefined_thing|length }}"), "5 2 0");
  EXPECT_EQ(render("{{ x|default('d') }}{{ ''|default('e', true) }}{{ none|default('f') }}"), "deNone");
  EXPECT_EQ(render("{{ [3,1,2]|first }}{{ [3,1,2]|last }}{{ [3,1,2]|sort|list }}"), "32[1, 2, 3]");
  EXPECT_EQ(render("{{ ms|map(attribute='r')|join }}", {{"ms", {{{"r", "a"}}, {{"r", "b"}}}}}), "ab");
  EXPECT_EQ(render("{{ ms|selectattr('r', 'equalto', 'u')|list|length }}",
                   {{"ms", {{{"r", "u"}}, {{"r", "a"}}, {{"r", "u"}}}}}),
            "2");
  EXPECT_EQ(render("{{ ms|rejectattr('r', 'equalto', 'u')|map(attribute='r')|list }}",
                   {{"ms", {{{"r", "u"}}, {{"r", "a"}}}}}),
            "['a']");
  EXPECT_EQ(render("{{ ['a', 'code', 'b']|reject('equalto', 'code')|join(',') }}"), "a,b");
  EXPECT_EQ(render("{{ [1, 0, 2]|select|list }}{{ ['A', 'a', 'b']|unique|list }}"), "[1, 2]['A', 'b']");
  EXPECT_EQ(render("{{ 'aXa'|replace('a', 'b') }}{{ '42'|int + 1 }}{{ 'x'|int }}{{ '3.7'|int }}"), "bXb4303");
  EXPECT_EQ(render("{{ 'hello world'|title }} {{ 'hELLO'|capitalize }} {{ 'ß'|upper }}"), "Hello World Hello ß");
  EXPECT_EQ(render("{{ 'a\nb\n\nc'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}"), "a\n  b\n\n  c|  a\n  b");
  EXPECT_EQ(render("{{ 1|string ~ 2 }}{{ [1]|string }}{{ 'x'|safe }}{{ '<&>'|e }}"), "12[1]x&lt;&amp;&gt;");
  EXPECT_EQ(render("{{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} {{ 7|round }}"), "2.0 4.0 2.67 7");
  EXPECT_EQ(render("{{ '%s-%d'|format('a', 3) }}{{ '%05.1f' % 3.14159 }}"), "a-3003.1");
  EXPECT_EQ(render("{{ [3, 1]|max }}{{ [3, 1]|min }}{{ [1, 2]|sum }}{{ 'abc'|reverse }}"), "313cba");
  EXPECT_EQ(render("{{ {'b': 1, 'a': 2}|dictsort }}"), "[('a', 2), ('b', 1)]");
}

TEST(JinjaTests, TypeAndValueTests) {
  EXPECT_EQ(render("{{ x is defined }}{{ x is undefined }}{{ none is none }}{{ 'a' is string }}"), "FalseTrueTrueTrue");
  EXPECT_EQ(render("{{ {} is mapping }}{{ [] is iterable }}{{ 'a' is sequence }}{{ 1 is number }}{{ 1 is integer }}"),
            "TrueTrueTrueTrueTrue");
  EXPECT_EQ(render("{{ true is boolean }}{{ 1.0 is float }}{{ 3 is divisibleby 3 }}{{ 2 is even }}{{ 'ab' is lower }}"),
            "TrueTrueTrueTrueTrue");
  EXPECT_EQ(render("{{ x is not defined }}{{ 1 is equalto 1 }}{{ 2 is gt 1 }}{{ 'a' is in 'cab' }}"),
            "TrueTrueTrueTrue");
  EXPECT_EQ(render("{{ false is sameas false }}{{ range is callable }}"), "TrueTrue");
}

TEST(JinjaExpressions, PythonSemantics) {
  EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 1 / 2 }} {{ 4 / 2 }}"), "3 -4 2 1024 0.5 2.0");
  EXPECT_EQ(render("{{ 'ab' * 2 }}{{ [1] + [2] }}{{ 1 + 1.5 }}{{ true + 1 }}"), "abab[1, 2]2.52");
  EXPECT_EQ(render("{{ 'a' ~ 1 ~ none ~ x }}"), "a1None");
  EXPECT_EQ(render("{{ 'yes' if 1 < 2 < 3 else 'no' }}{{ 'y' if 3 > 2 > 2 else 'n' }}"), "yesn");
  EXPECT_EQ(render("{{ 'b' in 'abc' }}{{ 2 in [1, 2] }}{{ 'k' in {'k': 1} }}{{ 'z' not in 'abc' }}"),
            "TrueTrueTrueTrue");
  EXPECT_EQ(render("{{ 0 or 'x' }}{{ 1 and 'y' }}{{ not [] }}{{ [] or {} }}"), "xyTrue{}");
  EXPECT_EQ(render("{{ 'abcdef'[::-1] }}{{ 'abcdef'[1:3] }}{{ [1,2,3][-1] }}{{ [1,2,3,4][::2] }}{{ 'héllo'[1] }}"),
            "fedcbabc3[1, 3]é");
  EXPECT_EQ(render("{{ {'a': [1, 'x', none, true, 1.5]} }}{{ (1,) }}{{ \"it's\" }}"),
            "{'a': [1, 'x', None, True, 1.5]}(1,)it's");
  EXPECT_EQ(render("{{ ['it\\'s'] }}"), "[\"it's\"]");
  EXPECT_EQ(render("{{ 'a' 'b' }}{{ \"\\u00e9\\n\" }}"), "abé\n");
  EXPECT_EQ(render("{{ d.a }}{{ d['a'] }}{{ d.get('z', 'dflt') }}{{ d.keys()|list }}", {{"d", {{"a", 1}}}}),
            "11dflt['a']");
}

TEST(JinjaExpressions, StringMethods) {
  EXPECT_EQ(render("{{ ' a b '.split() }}{{ 'a,b,,c'.split(',') }}{{ 'a,b,c'.rsplit(',', 1) }}"),
            "['a', 'b']['a', 'b', '', 'c']['a,b', 'c']");
  EXPECT_EQ(render("{{ '\n\nx\n'.strip('\n') }}{{ 'xxy'.lstrip('x') }}{{ 'abc'.startswith(('z', 'a')) }}"),
            "xyTrue");
  EXPECT_EQ(render("{{ 'a</think>b'.split('</think>')[-1] }}{{ 'Hi {}!'.format('you') }}{{ 'a-b'.replace('-', '+') }}"),
            "bHi you!a+b");
  EXPECT_EQ(render("{{ 'ab'.upper() }}{{ 'AB'.lower() }}{{ 'ab cd'.title() }}{{ '-'.join(['a', 'b']) }}"),
            "ABabAb Cda-b");
}

TEST(JinjaUndefined, BehavesLikeJinja2DefaultUndefined) {
  EXPECT_EQ(render("[{{ nothing }}]{% for x in nothing %}x{% endfor %}{{ nothing|length }}"), "[]0");
  EXPECT_EQ(render("{{ d.missing }}|{{ d.missing is defined }}", {{"d", ordered_json::object()}}), "|False");
  EXPECT_EQ(render("[{{ n.attr }}]", {{"n", nullptr}}), "[]");
  EXPECT_EQ(error_of("{{ nothing.attr }}"), "line 1: 'nothing' is undefined");
  EXPECT_EQ(error_of("{{ d.missing.deeper }}", {{"d", ordered_json::object()}}),
            "line 1: 'dict object' has no attribute 'missing'");
  EXPECT_EQ(error_of("{{ nothing + 1 }}"), "line 1: 'nothing' is undefined");
}

TEST(JinjaErrors, RaiseExceptionCarriesExactMessage) {
  warden::chat::ChatInputs in;
  in.messages = ordered_json::array({{{"role", "system"}, {"content", "s"}}});
  warden::chat::ChatTemplate t("{% if messages[0].role == 'system' %}{{ raise_exception('No system: ' ~ 1) }}{% endif %}");
  try {
    t.render(in);
    FAIL() << "no error";
  } catch (const TemplateError& e) {
    EXPECT_STREQ(e.what(), "No system: 1");
    EXPECT_TRUE(e.raised_by_template());
  }
}

TEST(JinjaErrors, SyntaxErrorsNameTheLine) {
  auto syntax = [](const std::string& src) {
    try {
      JinjaTemplate t(src);
      return std::string("parsed");
    } catch (const TemplateSyntaxError& e) {
      return std::string(e.what());
    }
  };
  EXPECT_EQ(syntax("a\nb\n{% if %}"), "line 3: expected an expression, got end of statement block");
  EXPECT_EQ(syntax("{% for x in y %}"), "line 1: unexpected end of template, expected 'endfor' or 'else'");
  EXPECT_EQ(syntax("{% frob %}"), "line 1: unknown or unexpected tag 'frob'");
  EXPECT_EQ(syntax("\n{{ 'abc }}"), "line 2: unterminated string literal");
  EXPECT_EQ(syntax("{{ x "), "line 1: unexpected end of template, expected '}}'");
  EXPECT_EQ(syntax("{# never closed"), "line 1: missing end of comment tag");
  EXPECT_EQ(syntax("{% break %}"), "line 1: 'break' outside of a loop");
  EXPECT_EQ(syntax("{{ (1 }}"), "line 1: unexpected '}', expected closing for '('");
  // Unknown filters and tests fail at parse time, as in Jinja2's compiler.
  EXPECT_EQ(syntax("{% if false %}\n{{ x|nosuchfilter }}{% endif %}"), "line 2: no filter named 'nosuchfilter'");
  EXPECT_EQ(syntax("{{ x is nosuchtest }}"), "line 1: no test named 'nosuchtest'");
  EXPECT_EQ(syntax("{{ a[1:2, 3] }}"), "line 1: a slice cannot be combined with other subscripts");
}

TEST(JinjaErrors, RuntimeErrorsNameTheLine) {
  EXPECT_EQ(error_of("\n\n{{ 1 + 'a' }}"), "line 3: can only concatenate str (not \"int\") to str");
  EXPECT_EQ(error_of("{{ 1 // 0 }}"), "line 1: integer division or modulo by zero");
  EXPECT_EQ(error_of("{% for a, b in [1] %}{% endfor %}"), "line 1: 'int' object is not iterable");
  // Floats no int64 holds are errors, not undefined conversions.
  EXPECT_EQ(error_of("{{ '%d' % 1e300 }}"), "line 1: cannot convert float to integer");
  EXPECT_EQ(error_of("{{ (1e300)|int }}"), "line 1: cannot convert float to integer");
  EXPECT_EQ(error_of("{{ '%c' % 1114112 }}"), "line 1: %c format: argument not in range(0x110000)");
  EXPECT_EQ(render("{{ '%d|%c' % (-2.9, 65.5) }}"), "-2|A");
}

TEST(JinjaLimits, HostileTemplatesStopWithAnError) {
  TemplateLimits small;
  small.max_steps = 100000;
  small.max_output_bytes = 1 << 16;
  small.max_allocated_bytes = 1 << 22;
  small.max_collection_items = 1 << 12;
  // Nested loops over one list allocate nothing per step: the step budget stops them.
  const std::string nested = "{% set r = range(4000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}";
  EXPECT_NE(error_of(nested, {}, small).find("step limit"), std::string::npos) << error_of(nested, {}, small);
  // Building a new list per iteration runs into the allocation budget.
  EXPECT_NE(error_of("{% for i in range(4000) %}{% for j in range(4000) %}{% endfor %}{% endfor %}", {}, small)
                .find("memory limit"),
            std::string::npos);
  EXPECT_NE(error_of("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", {}, small).find("nested too deeply"),
            std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
                     "{% endfor %}",
                     {}, small)
                .find("size limit"),
            std::string::npos);
  EXPECT_NE(error_of("{{ 'x' * 100000000 }}", {}, small).find("size limit"), std::string::npos);
  EXPECT_NE(error_of("{{ range(100000000) }}", {}, small).find("too large"), std::string::npos);
  EXPECT_NE(error_of("{% for i in range(4000) %}{{ 'abcdefgh' * 8 }}{% endfor %}", {}, small).find("size limit"),
            std::string::npos);
  std::string deep(500, '(');
  EXPECT_THROW(JinjaTemplate("{{ " + deep + "1" + std::string(500, ')') + " }}"), TemplateSyntaxError);
  // Long left-deep chains count as nesting too (the evaluator recurses through them).
  std::string chain = "{{ 1";
  for (int i = 0; i < 2000; ++i) chain += " + 1";
  EXPECT_THROW(JinjaTemplate(chain + " }}"), TemplateSyntaxError);
}

// One step may not hide unbounded work: operations on long strings cost
// steps by length. Each template runs 1000 operations on 60000-byte strings:
// a few thousand steps if each cost one, ~940 each at one step per 64 bytes.
TEST(JinjaLimits, StringWorkCostsStepsByLength) {
  TemplateLimits limits;
  limits.max_steps = 100000;
  limits.max_output_bytes = 1 << 17;
  const std::string prelude =
      "{% set s = 'a' * 60000 %}{% set t = 'a' * 60000 %}{% for i in range(1000) %}{% set x = ";
  for (const char* expr :
       {"s.count('b')", "s.find('b')", "s.isalpha()", "s.isupper()", "s.replace('b', 'c')", "s.split('b')",
        "s.splitlines()", "s.upper()", "s.strip()", "s == t", "s != t", "[s] == [t]", "s < t", "'b' in s",
        "s is lower", "s ~ 'x'", "s + 'x'", "'%s' % s", "[s, t]|join", "s|length", "s|upper", "s|trim",
        "s|replace('b', 'c')", "s|reverse", "s|wordcount", "s|indent", "s|tojson", "s[100]", "s[1:]"}) {
    std::string err = error_of(prelude + expr + " %}{% endfor %}", {}, limits);
    EXPECT_NE(err.find("step limit"), std::string::npos) << expr << ": " << err;
  }
}

// The template from the security review: ~110 ms per count(), a million
// times. It must stop with the step (or, on a very slow machine, time) error.
// A long needle in a long text: a search that compares the needle at every
// position took 65 s here, past the render's time limit; a linear one does not.
TEST(JinjaLimits, SubstringSearchIsLinear) {
  const std::string setup = "{% set a = 'a' * 8000000 %}{% set b = 'a' * 400000 + 'b' %}";
  EXPECT_EQ(render(setup + "{{ b in a }} {{ a.find(b) }} {{ a.rfind(b) }} {{ a.count(b) }} "
                           "{{ a.split(b)|length }} {{ a.rsplit(b, 1)|length }} {{ a.replace(b, 'x')|length }}"),
            "False -1 -1 0 1 1 8000000");
  // The same searches still find what is there, from either end.
  EXPECT_EQ(render("{% set t = 'xaabaaby' %}{{ t.find('aab') }} {{ t.rfind('aab') }} {{ t.count('aab') }} "
                   "{{ t.split('aab') }} {{ 'aaa'.rsplit('aa', 1) }} {{ 'aaa'.split('aa', 1) }} {{ t.rfind('') }}"),
            "1 4 2 ['x', '', 'y'] ['a', ''] ['', 'a'] 8");
}

TEST(JinjaLimits, CountLoopOverHugeStringStops) {
  std::string err =
      error_of("{% set s = 'a' * 60000000 %}{% for i in range(1000000) %}{{ s.count('b') }}{% endfor %}");
  EXPECT_TRUE(err.find("step limit") != std::string::npos || err.find("time limit") != std::string::npos) << err;
}

TEST(JinjaLimits, RenderStopsAtTheTimeLimit) {
  TemplateLimits limits;
  limits.max_steps = std::numeric_limits<uint64_t>::max();
  limits.max_render_time = std::chrono::milliseconds(0);
  EXPECT_EQ(error_of("{% for i in range(10) %}{{ i }}{% endfor %}", {}, limits),
            "template exceeded its time limit (rendering took longer than 0 s)");
  // 10^10 iterations with no step budget: only the clock can stop it.
  limits.max_render_time = std::chrono::milliseconds(100);
  EXPECT_EQ(error_of("{% set r = range(100000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}", {},
                     limits),
            "template exceeded its time limit (rendering took longer than 100 ms)");
}

// Collections are checked against the item limit, and charged, before they
// are built: iterating a 60000-character string used to make 60000 values
// first and only then find the memory limit exceeded.
TEST(JinjaLimits, CollectionsAreCheckedBeforeTheyAreBuilt) {
  TemplateLimits limits;
  limits.max_output_bytes = 1 << 17;
  limits.max_allocated_bytes = 1 << 22;
  limits.max_collection_items = 1 << 12;
  const std::string too_many = "list exceeds the template size limit (4096 items)";
  ordered_json big_dict = ordered_json::object();
  for (int i = 0; i < 5000; ++i) big_dict[std::string("k").append(std::to_string(i))] = i;
  for (const char* source : {"{% for c in s %}{% break %}{% endfor %}", "{{ s|list|length }}",
                             "{% set a, b = s %}", "{{ s|first }}", "{{ s.split('a')|length }}",
                             "{{ ('\\n' * 60000).splitlines()|length }}", "{{ [1]|batch(1000000000, 0) }}",
                             "{% for k in d %}{% break %}{% endfor %}", "{{ d.items()|length }}",
                             "{{ d|dictsort|length }}", "{{ ([1] * 4000) + ([1] * 4000) }}"}) {
    std::string err = error_of(std::string("{% set s = 'a' * 60000 %}") + source, {{"d", big_dict}}, limits);
    EXPECT_NE(err.find(too_many), std::string::npos) << source << ": " << err;
  }
  // indent() checks the size as it goes, not after building every line.
  EXPECT_NE(error_of("{{ ('\\n' * 60000)|indent(4096, blank=true) }}", {}, limits).find("indent(): result exceeds"),
            std::string::npos);
}

TEST(JinjaLimits, DeepOrSelfContainingValuesStopWithAnError) {
  EXPECT_NE(error_of("{% set ns = namespace(x=1) %}{% set ns.x = ns %}{{ ns }}").find("nested too deeply"),
            std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace(x=1) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}{% endfor %}")
                .find("nested deeper than"),
            std::string::npos);
  ordered_json deep = "leaf";
  for (int i = 0; i < 1000; ++i) deep = ordered_json::array({deep});
  EXPECT_NE(error_of("{{ v }}", {{"v", deep}}).find("nested deeper than"), std::string::npos);
}

TEST(ChatApi, StrftimeNowDateStringAndReservedNames) {
  warden::chat::ChatInputs in;
  in.messages = ordered_json::array({{{"role", "user"}, {"content", "hi"}}});
  in.now = 0;  // 1970-01-01 in UTC; the test only compares against the same formatting
  warden::chat::ChatTemplate t("{{ strftime_now('%Y') }}|{{ date_string|length > 0 }}|{{ enable_thinking }}");
  in.extra_context = {{"enable_thinking", false}};
  std::string out = t.render(in);
  EXPECT_TRUE(out == "1970|True|False" || out == "1969|True|False") << out;
  in.extra_context = {{"messages", ordered_json::array()}};
  EXPECT_THROW(t.render(in), warden::Error);
  in.extra_context = ordered_json::object();
  in.messages = ordered_json::array({{{"content", "no role"}}});
  EXPECT_THROW(t.render(in), warden::Error);
}

TEST(ChatApi, ToolsAbsentMeansUndefined) {
  warden::chat::ChatInputs in;
  in.messages = ordered_json::array({{{"role", "user"}, {"content", "hi"}}});
  warden::chat::ChatTemplate t("{{ tools is defined }}");
  EXPECT_EQ(t.render(in), "False");
  in.tools = ordered_json::array();
  EXPECT_EQ(t.render(in), "True");
}

TEST(ChatApi, ChatmlFallback) {
  warden::chat::ChatInputs in;
  in.messages = ordered_json::array({{{"role", "system"}, {"content", "be brief"}},
                                     {{"role", "user"}, {"content", "hi"}},
                                     {{"role", "assistant"},
                                      {"content", nullptr},
                                      {"tool_calls", {{{"function", {{"name", "f"}, {"arguments", {{"x", 1}}}}}}}}}});
  in.add_generation_prompt = true;
  EXPECT_EQ(warden::chat::render_chatml(in),
            "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
            "<|im_start|>assistant\n\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n</tool_call>"
            "<|im_end|>\n<|im_start|>assistant\n");
  in.tools = ordered_json::array({{{"type", "function"}, {"function", {{"name", "f"}}}}});
  std::string with_tools = warden::chat::render_chatml(in);
  EXPECT_EQ(with_tools.rfind("<|im_start|>system\nbe brief\n\n# Tools", 0), 0u) << with_tools;
  EXPECT_NE(with_tools.find("{\"type\": \"function\", \"function\": {\"name\": \"f\"}}"), std::string::npos);
}

}  // namespace
