// Host-side element types, the seeded random fill and value comparison.
//
// The random fill is part of the runner's interface: src/runtime/prng.ts computes the
// same values, so TypeScript references can be built from a seed without shipping data.
//   element i of a fill with seed s = mix(s + (i + 1) * 0x9E3779B97F4A7C15)   (splitmix64)
//   u = (mix >> 11) * 2^-53 in [0, 1)
//   floats: lo + (hi - lo) * u, rounded once (to nearest even) from double to the dtype
//   ints:   lo + floor(u * (hi - lo + 1)), clamped to hi
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace num {

enum class DType { Bool, I8, U8, I16, U16, I32, U32, I64, F16, BF16, F32, F64, FP8E4M3, FP8E5M2 };

struct DTypeInfo { DType t; const char* name; int bytes; bool isFloat; };

inline const std::vector<DTypeInfo>& dtypes() {
  static const std::vector<DTypeInfo> all = {
      {DType::Bool, "bool", 1, false}, {DType::I8, "i8", 1, false},   {DType::U8, "u8", 1, false},
      {DType::I16, "i16", 2, false},   {DType::U16, "u16", 2, false}, {DType::I32, "i32", 4, false},
      {DType::U32, "u32", 4, false},   {DType::I64, "i64", 8, false}, {DType::F16, "f16", 2, true},
      {DType::BF16, "bf16", 2, true},  {DType::F32, "f32", 4, true},  {DType::F64, "f64", 8, true},
      {DType::FP8E4M3, "fp8e4m3", 1, true}, {DType::FP8E5M2, "fp8e5m2", 1, true},
  };
  return all;
}

inline const DTypeInfo* findDType(const std::string& name) {
  for (auto& d : dtypes())
    if (name == d.name) return &d;
  return nullptr;
}
inline const DTypeInfo& info(DType t) {
  for (auto& d : dtypes())
    if (d.t == t) return d;
  return dtypes()[0];
}

// A small float format: `ieee` ones have inf and NaN at the all-ones exponent; e4m3 ("fn")
// has no inf, uses the all-ones exponent for normal numbers and only S.1111.111 for NaN.
// The fp8 formats saturate out-of-range values (and infinities) to +-max, as PTX
// cvt.rn.satfinite does and as src/numeric/dtype.ts rounds; f16/bf16 overflow to inf.
struct MiniFloat { int expBits, mantBits; bool ieee, saturate; };
constexpr MiniFloat kF16{5, 10, true, false}, kBF16{8, 7, true, false}, kE4M3{4, 3, false, true},
    kE5M2{5, 2, true, true};

inline double miniMax(const MiniFloat& f) {
  int bias = (1 << (f.expBits - 1)) - 1;
  if (f.ieee) return std::ldexp(2.0 - std::ldexp(1.0, -f.mantBits), (1 << f.expBits) - 2 - bias);
  return std::ldexp(1.0 + double((1 << f.mantBits) - 2) / (1 << f.mantBits), (1 << f.expBits) - 1 - bias);
}

// Rounds to nearest even, once, from double.
inline uint32_t encodeMini(const MiniFloat& f, double x) {
  const int bias = (1 << (f.expBits - 1)) - 1;
  const uint32_t signBit = 1u << (f.expBits + f.mantBits);
  const uint32_t expMask = (1u << f.expBits) - 1, mantMask = (1u << f.mantBits) - 1;
  const uint32_t maxBits = f.ieee ? ((expMask - 1) << f.mantBits) | mantMask : (expMask << f.mantBits) | (mantMask - 1);
  if (std::isnan(x)) return f.ieee ? (expMask << f.mantBits) | (1u << (f.mantBits - 1)) : signBit - 1;
  uint32_t sign = std::signbit(x) ? signBit : 0;
  double a = std::fabs(x);
  if (a == 0) return sign;
  if (std::isinf(a)) return sign | (f.saturate ? maxBits : expMask << f.mantBits);
  const int minExp = 1 - bias;
  int ex;
  std::frexp(a, &ex);
  int e = ex - 1;
  if (e < minExp) e = minExp;
  double q = std::ldexp(1.0, e - f.mantBits);
  double r = std::nearbyint(a / q) * q;
  if (r > miniMax(f)) return sign | (f.saturate ? maxBits : expMask << f.mantBits);
  if (r < std::ldexp(1.0, minExp)) return sign | static_cast<uint32_t>(std::ldexp(r, f.mantBits - minExp));
  std::frexp(r, &ex);
  e = ex - 1;
  uint32_t m = static_cast<uint32_t>(std::ldexp(r, f.mantBits - e)) - (1u << f.mantBits);
  return sign | (static_cast<uint32_t>(e + bias) << f.mantBits) | m;
}

inline double decodeMini(const MiniFloat& f, uint32_t bits) {
  const int bias = (1 << (f.expBits - 1)) - 1;
  const uint32_t expMask = (1u << f.expBits) - 1;
  const uint32_t mantMask = (1u << f.mantBits) - 1;
  bool neg = (bits >> (f.expBits + f.mantBits)) & 1;
  uint32_t e = (bits >> f.mantBits) & expMask, m = bits & mantMask;
  double v;
  if (f.ieee && e == expMask) v = m ? NAN : INFINITY;
  else if (!f.ieee && e == expMask && m == mantMask) v = NAN;
  else if (e == 0) v = std::ldexp(double(m), 1 - bias - f.mantBits);
  else v = std::ldexp(double(m | (1u << f.mantBits)), int(e) - bias - f.mantBits);
  return neg ? -v : v;
}

// Integers: truncate toward zero, then wrap modulo 2^bits (as src/numeric/dtype.ts does);
// NaN and infinities give 0. Going through uint64_t keeps the wrap defined behaviour.
inline uint64_t wrapInt(double x) {
  if (!std::isfinite(x)) return 0;
  double t = std::trunc(std::fmod(x, 18446744073709551616.0));
  return t < 0 ? static_cast<uint64_t>(static_cast<int64_t>(t)) : static_cast<uint64_t>(t);
}

// Writes `x` rounded to `t` at `dst` (little-endian, as the GPU reads it).
inline void store(DType t, void* dst, double x) {
  switch (t) {
    case DType::Bool: { uint8_t v = x != 0; std::memcpy(dst, &v, 1); break; }
    case DType::I8: case DType::U8: { uint8_t v = uint8_t(wrapInt(x)); std::memcpy(dst, &v, 1); break; }
    case DType::I16: case DType::U16: { uint16_t v = uint16_t(wrapInt(x)); std::memcpy(dst, &v, 2); break; }
    case DType::I32: case DType::U32: { uint32_t v = uint32_t(wrapInt(x)); std::memcpy(dst, &v, 4); break; }
    case DType::I64: { uint64_t v = wrapInt(x); std::memcpy(dst, &v, 8); break; }
    case DType::F16: { uint16_t v = uint16_t(encodeMini(kF16, x)); std::memcpy(dst, &v, 2); break; }
    case DType::BF16: { uint16_t v = uint16_t(encodeMini(kBF16, x)); std::memcpy(dst, &v, 2); break; }
    case DType::F32: { float v = float(x); std::memcpy(dst, &v, 4); break; }
    case DType::F64: std::memcpy(dst, &x, 8); break;
    case DType::FP8E4M3: { uint8_t v = uint8_t(encodeMini(kE4M3, x)); std::memcpy(dst, &v, 1); break; }
    case DType::FP8E5M2: { uint8_t v = uint8_t(encodeMini(kE5M2, x)); std::memcpy(dst, &v, 1); break; }
  }
}

inline double load(DType t, const void* src) {
  switch (t) {
    case DType::Bool: case DType::U8: { uint8_t v; std::memcpy(&v, src, 1); return v; }
    case DType::I8: { int8_t v; std::memcpy(&v, src, 1); return v; }
    case DType::I16: { int16_t v; std::memcpy(&v, src, 2); return v; }
    case DType::U16: { uint16_t v; std::memcpy(&v, src, 2); return v; }
    case DType::I32: { int32_t v; std::memcpy(&v, src, 4); return v; }
    case DType::U32: { uint32_t v; std::memcpy(&v, src, 4); return v; }
    case DType::I64: { int64_t v; std::memcpy(&v, src, 8); return double(v); }
    case DType::F16: { uint16_t v; std::memcpy(&v, src, 2); return decodeMini(kF16, v); }
    case DType::BF16: { uint16_t v; std::memcpy(&v, src, 2); return decodeMini(kBF16, v); }
    case DType::F32: { float v; std::memcpy(&v, src, 4); return v; }
    case DType::F64: { double v; std::memcpy(&v, src, 8); return v; }
    case DType::FP8E4M3: { uint8_t v; std::memcpy(&v, src, 1); return decodeMini(kE4M3, v); }
    case DType::FP8E5M2: { uint8_t v; std::memcpy(&v, src, 1); return decodeMini(kE5M2, v); }
  }
  return 0;
}

inline uint64_t splitmix(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

inline double uniform(uint64_t seed, uint64_t i) { return double(splitmix(seed, i) >> 11) * 0x1.0p-53; }

inline double randomValue(const DTypeInfo& d, uint64_t seed, uint64_t i, double lo, double hi) {
  double u = uniform(seed, i);
  if (d.isFloat) return lo + (hi - lo) * u;
  double v = lo + std::floor(u * (hi - lo + 1));
  return v > hi ? hi : v;
}

// Large tensors (8192^2) take seconds on one core; the fill is counter-based, so it splits.
inline void fillRandom(const DTypeInfo& d, uint64_t seed, double lo, double hi, size_t count, uint8_t* out) {
  unsigned nt = std::thread::hardware_concurrency();
  if (nt == 0) nt = 1;
  if (nt > 16) nt = 16;
  if (count < (1u << 16)) nt = 1;
  auto work = [&](size_t from, size_t to) {
    for (size_t i = from; i < to; i++) store(d.t, out + i * d.bytes, randomValue(d, seed, i, lo, hi));
  };
  std::vector<std::thread> threads;
  size_t chunk = (count + nt - 1) / nt;
  for (unsigned k = 0; k < nt; k++) {
    size_t from = k * chunk, to = std::min(count, from + chunk);
    if (from >= to) break;
    if (nt == 1) work(from, to);
    else threads.emplace_back(work, from, to);
  }
  for (auto& t : threads) t.join();
}

struct CompareStats {
  double maxAbs = 0, maxRel = 0;
  size_t mismatches = 0, firstBad = SIZE_MAX;
  double firstGot = 0, firstWant = 0;
};

// Passes where |got - want| <= atol + rtol * |want| (numpy's allclose); NaN anywhere fails.
inline CompareStats compare(const DTypeInfo& gt, const uint8_t* got, const DTypeInfo& wt, const uint8_t* want,
                            size_t count, double rtol, double atol) {
  CompareStats s;
  for (size_t i = 0; i < count; i++) {
    double g = load(gt.t, got + i * gt.bytes), w = load(wt.t, want + i * wt.bytes);
    double diff = std::fabs(g - w);
    bool bad = !(diff <= atol + rtol * std::fabs(w));
    if (std::isnan(g) || std::isnan(w)) { bad = !(std::isnan(g) && std::isnan(w)); diff = bad ? INFINITY : 0; }
    if (diff > s.maxAbs || std::isnan(diff)) s.maxAbs = diff;
    double rel = diff / std::max(std::fabs(w), 1e-30);
    if (rel > s.maxRel) s.maxRel = rel;
    if (bad) {
      if (s.mismatches == 0) { s.firstBad = i; s.firstGot = g; s.firstWant = w; }
      s.mismatches++;
    }
  }
  return s;
}

}  // namespace num
