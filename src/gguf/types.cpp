#include "gguf/types.h"

#include <array>
#include <cctype>
#include <string>

#include "util/error.h"

namespace warden::gguf {
namespace {

struct Entry {
  TensorType type;
  TypeInfo info;
};

// Block geometry of each type as ggml defines it (QK_K = 256).
constexpr std::array<Entry, 20> kTypes{{
    {TensorType::F32, {"f32", 1, 4}},
    {TensorType::F16, {"f16", 1, 2}},
    {TensorType::Q4_0, {"q4_0", 32, 18}},
    {TensorType::Q4_1, {"q4_1", 32, 20}},
    {TensorType::Q5_0, {"q5_0", 32, 22}},
    {TensorType::Q5_1, {"q5_1", 32, 24}},
    {TensorType::Q8_0, {"q8_0", 32, 34}},
    {TensorType::Q8_1, {"q8_1", 32, 36}},
    {TensorType::Q2_K, {"q2_K", 256, 84}},
    {TensorType::Q3_K, {"q3_K", 256, 110}},
    {TensorType::Q4_K, {"q4_K", 256, 144}},
    {TensorType::Q5_K, {"q5_K", 256, 176}},
    {TensorType::Q6_K, {"q6_K", 256, 210}},
    {TensorType::Q8_K, {"q8_K", 256, 292}},
    {TensorType::I8, {"i8", 1, 1}},
    {TensorType::I16, {"i16", 1, 2}},
    {TensorType::I32, {"i32", 1, 4}},
    {TensorType::I64, {"i64", 1, 8}},
    {TensorType::F64, {"f64", 1, 8}},
    {TensorType::BF16, {"bf16", 1, 2}},
}};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

}  // namespace

std::optional<TypeInfo> type_info(uint32_t id) {
  for (const auto& e : kTypes)
    if (uint32_t(e.type) == id) return e.info;
  return std::nullopt;
}

std::string_view type_name(TensorType t) {
  auto info = type_info(t);
  return info ? info->name : std::string_view("unknown");
}

std::optional<TensorType> type_from_name(std::string_view name) {
  for (const auto& e : kTypes)
    if (iequals(e.info.name, name)) return e.type;
  return std::nullopt;
}

size_t row_bytes(TensorType t, int64_t n) {
  auto info = type_info(t);
  if (!info) throw Error("unknown tensor type id " + std::to_string(uint32_t(t)));
  if (n < 0 || n % info->block_size != 0)
    throw Error("row of " + std::to_string(n) + " elements is not a multiple of the " +
                std::string(info->name) + " block size " + std::to_string(info->block_size));
  return size_t(n / info->block_size) * info->type_size;
}

}  // namespace warden::gguf
