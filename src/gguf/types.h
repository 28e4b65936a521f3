#pragma once
// ggml tensor type ids and block geometry, exactly as GGUF files store them.
// The numeric ids are part of the file format and must never change.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace warden::gguf {

enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

struct TypeInfo {
  std::string_view name;  // "q4_K", as ggml names it
  uint32_t block_size;    // elements per block
  uint32_t type_size;     // bytes per block
};

// Geometry of a type id, or nullopt for ids this build does not know.
std::optional<TypeInfo> type_info(uint32_t id);
inline std::optional<TypeInfo> type_info(TensorType t) { return type_info(uint32_t(t)); }
std::string_view type_name(TensorType t);
// Parses a name such as "Q4_K", "q8_0", "f16" (case-insensitive).
std::optional<TensorType> type_from_name(std::string_view name);

// Bytes of one row of n elements; n must be a multiple of the block size.
size_t row_bytes(TensorType t, int64_t n);

}  // namespace warden::gguf
