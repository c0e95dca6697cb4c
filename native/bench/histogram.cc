// histogram.cc — see histogram.h.
#include "histogram.h"

#include <algorithm>

namespace echocast {
namespace bench {

namespace {

// Histogram layout: exact below 2048; then, per power of two, 1024 buckets.
constexpr std::uint64_t kExact = 2048;
constexpr std::uint64_t kMaxValue = (std::uint64_t(1) << 42) - 1;  // ~51 days in µs.
constexpr std::size_t kBuckets = 33 * 1024;

// The index of v's highest set bit (0 for 0 and 1): a binary search,
// halving the step from 32 bits to 1.
int msb(std::uint64_t v) {
  int r = 0;
  for (int step = 32; step > 0; step /= 2) {
    if (v >> step) {
      v >>= step;
      r += step;
    }
  }
  return r;
}

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(kBuckets, 0) {}

std::size_t LatencyHistogram::index_of(std::uint64_t v) {
  if (v > kMaxValue) v = kMaxValue;
  if (v < kExact) return static_cast<std::size_t>(v);
  int e = msb(v) - 10;
  return static_cast<std::size_t>(e) * 1024 + static_cast<std::size_t>(v >> e);
}

std::uint64_t LatencyHistogram::value_at(std::size_t i) {
  if (i < kExact) return i;
  std::size_t e = i / 1024 - 1;
  return static_cast<std::uint64_t>(i - e * 1024) << e;
}

void LatencyHistogram::record(std::uint64_t v) {
  counts_[index_of(v)] += 1;
  total_ += 1;
  if (v > max_) max_ = v;
}

void LatencyHistogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_ = 0;
  max_ = 0;
}

std::uint64_t LatencyHistogram::percentile(double p) const {
  if (total_ == 0) return 0;
  double want = p / 100.0 * static_cast<double>(total_);
  std::uint64_t rank = static_cast<std::uint64_t>(want);
  if (static_cast<double>(rank) < want) rank += 1;
  if (rank < 1) rank = 1;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(value_at(i), max_);
  }
  return max_;
}

}  // namespace bench
}  // namespace echocast
