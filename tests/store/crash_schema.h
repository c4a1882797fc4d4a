// The schema and row contents shared by the store crash writer and the crash test.
#pragma once

#include <cstdint>

#include "store/migrations.h"
#include "store/value.h"

namespace moatless::store::crash {

// Every transaction N inserts a(N) and b(N) and sets progress.last = N, so a half-applied
// transaction shows as a difference between a, b and progress.
inline const Migration kMigrations[] = {
    {1, "create_crash_tables",
     "CREATE TABLE a (n BIGINT PRIMARY KEY NOT NULL, payload BLOB NOT NULL);\n"
     "CREATE TABLE b (n BIGINT PRIMARY KEY NOT NULL, checksum BIGINT NOT NULL);\n"
     "CREATE TABLE progress (id BIGINT PRIMARY KEY NOT NULL, last BIGINT NOT NULL);\n"
     "INSERT INTO progress (id, last) VALUES (1, 0);"},
};

inline constexpr std::size_t kPayloadSize = 4096;

// The payload of row N: deterministic, so that a torn page would show.
inline Blob Payload(std::int64_t n) {
  Blob payload(kPayloadSize);
  std::uint64_t x = static_cast<std::uint64_t>(n) * 0x9e3779b97f4a7c15ull + 1;
  for (auto& byte : payload) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    byte = static_cast<std::uint8_t>(x);
  }
  return payload;
}

inline std::int64_t Checksum(const Blob& payload) {
  std::uint64_t sum = 1469598103934665603ull;
  for (auto byte : payload) sum = (sum ^ byte) * 1099511628211ull;
  return static_cast<std::int64_t>(sum >> 1);
}

}  // namespace moatless::store::crash
