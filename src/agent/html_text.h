#pragma once
// Readable text from an HTML page, for fetch_url results: scripts, styles and
// tags dropped, block elements become line breaks, common entities decoded,
// whitespace collapsed (but inside <pre>), control characters removed. Not a full HTML parser:
// its only job is to hand the model less noise. Runs on untrusted bytes, so
// it is linear and never throws.
#include <string>
#include <string_view>

namespace warden::agent {

std::string html_to_text(std::string_view html);
// Whether a body is HTML: by its content type, or by its first bytes where
// the server named no type.
bool looks_like_html(std::string_view content_type, std::string_view body);
// Removes C0 controls (except \n and \t), DEL and ESC sequences' introducer,
// so tool output cannot carry terminal escapes into logs or prompts.
std::string strip_control_chars(std::string_view text);

}  // namespace warden::agent
