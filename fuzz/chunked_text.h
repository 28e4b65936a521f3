#pragma once
// The input of the fuzz targets that feed text piece by piece, as a model's
// tokens arrive: data[0] % 8 chunk-length bytes follow the first byte, the
// rest is the text. The targets check that the result does not depend on how
// the text was cut.
#include <cstddef>
#include <cstdint>
#include <string_view>

struct ChunkedText {
  const uint8_t* chunks = nullptr;
  size_t n_chunks = 0;
  std::string_view text;

  // False when the input is too short to hold its chunk lengths.
  bool parse(const uint8_t* data, size_t size) {
    n_chunks = size ? data[0] % 8 : 0;
    if (size < 1 + n_chunks) return false;
    chunks = data + 1;
    text = std::string_view(reinterpret_cast<const char*>(data + 1 + n_chunks), size - 1 - n_chunks);
    return true;
  }

  // The same text in one piece.
  ChunkedText whole() const { return {nullptr, 0, text}; }

  // feed(piece) for consecutive pieces of the text, 1-16 bytes long by the
  // chunk lengths in turn (one piece when there are none). With
  // whole_characters, a piece never ends before a UTF-8 continuation byte.
  template <typename Feed>
  void for_each_piece(bool whole_characters, Feed feed) const {
    size_t i = 0, k = 0;
    while (i < text.size()) {
      size_t len = n_chunks ? 1 + chunks[k++ % n_chunks] % 16 : text.size();
      len = len < text.size() - i ? len : text.size() - i;
      if (whole_characters)
        while (i + len < text.size() && (static_cast<uint8_t>(text[i + len]) & 0xC0) == 0x80) len++;
      feed(text.substr(i, len));
      i += len;
    }
  }
};
