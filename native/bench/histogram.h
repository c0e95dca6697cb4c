// histogram.h — the latency histogram of the bench's load generator
// (loadgen.h): fixed memory, percentiles within 0.1%.
#ifndef ECHOCAST_BENCH_HISTOGRAM_H
#define ECHOCAST_BENCH_HISTOGRAM_H

#include <cstddef>
#include <cstdint>
#include <vector>

namespace echocast {
namespace bench {

// An HDR-style log-linear histogram of non-negative integers (µs): exact
// below 2048, then 1024 buckets per power of two, so a value is reported
// within 1/1024 (< 0.1%) of itself. Fixed memory (about 264 KiB).
class LatencyHistogram {
 public:
  // Empty, with every bucket allocated up front.
  LatencyHistogram();
  // Counts one value (values past about 51 days in µs count as that).
  void record(std::uint64_t value);
  // Forgets every value (the admission probes, before the load).
  void reset();
  // How many values were recorded, and the largest.
  std::uint64_t count() const { return total_; }
  std::uint64_t max() const { return max_; }
  // The value below which p percent of the recorded values fall: the lowest
  // value of the bucket holding that rank, at most max(); 0 when empty
  // (as src/bench/histogram.ts reports it).
  std::uint64_t percentile(double p) const;

  // The bucket of a value, and the lowest value of a bucket (for tests).
  static std::size_t index_of(std::uint64_t value);
  static std::uint64_t value_at(std::size_t index);

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace bench
}  // namespace echocast

#endif  // ECHOCAST_BENCH_HISTOGRAM_H
