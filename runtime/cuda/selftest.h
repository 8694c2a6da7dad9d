// `runner --selftest`: the host-side pieces (JSON, plan reader, number formats, PRNG,
// compare) checked without a GPU. test/runtime runs it; each failure prints its line.
#pragma once
#include <cmath>
#include <cstdio>
#include <string>

#include "json.h"
#include "numeric.h"
#include "plan.h"

namespace selftest {

inline int& failures() { static int n = 0; return n; }
inline int& checks() { static int n = 0; return n; }

#define ST_CHECK(cond)                                                       \
  do {                                                                       \
    selftest::checks()++;                                                    \
    if (!(cond)) {                                                           \
      selftest::failures()++;                                                \
      std::fprintf(stderr, "selftest FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                        \
  } while (0)

// The message of the error parsing `text` throws, or "" if it parses.
inline std::string jsonError(const std::string& text) {
  try { json::parse(text); } catch (const json::ParseError& e) { return e.what(); }
  return "";
}
inline std::string planError(const std::string& text) {
  try { plan::Reader().read(json::parse(text)); } catch (const std::exception& e) { return e.what(); }
  return "";
}
inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

inline void testJson() {
  auto v = json::parse(R"( {"a": [1, -2.5e3, 0.125, true, false, null], "b": {"c": "x\"y\\z\n\u00e9\ud83d\ude00"}, "n": 1073741824} )");
  ST_CHECK(v.isObject() && v.obj.size() == 3);
  ST_CHECK(v.obj[0].first == "a" && v.obj[1].first == "b");  // order kept
  auto a = v.get("a");
  ST_CHECK(a && a->arr.size() == 6);
  ST_CHECK(a->arr[0].num == 1 && a->arr[1].num == -2500 && a->arr[2].num == 0.125);
  ST_CHECK(a->arr[3].isBool() && a->arr[3].b && !a->arr[4].b && a->arr[5].isNull());
  ST_CHECK(v.get("b")->get("c")->str == "x\"y\\z\n\xc3\xa9\xf0\x9f\x98\x80");
  ST_CHECK(v.get("n")->num == 1073741824.0);
  ST_CHECK(v.get("missing") == nullptr);
  ST_CHECK(json::parse("[]").arr.empty() && json::parse("{}").obj.empty());
  ST_CHECK(json::parse("9007199254740991").num == 9007199254740991.0);

  ST_CHECK(contains(jsonError("{\"a\": 1,}"), "1:9"));
  ST_CHECK(contains(jsonError("{\n  \"a\": tru\n}"), "2:8"));
  ST_CHECK(contains(jsonError("[1 2]"), "expected ',' or ']'"));
  ST_CHECK(contains(jsonError("\"abc"), "unterminated"));
  ST_CHECK(contains(jsonError("01"), "unexpected text"));
  ST_CHECK(contains(jsonError("1."), "digit"));
  ST_CHECK(contains(jsonError("\"\\ud800\""), "surrogate"));
  ST_CHECK(contains(jsonError("[1] x"), "unexpected text"));
  ST_CHECK(contains(jsonError(""), "end of input"));
  ST_CHECK(contains(jsonError(std::string(300, '[')), "nesting"));

  // What the writer prints, the reader reads back unchanged.
  std::string text = json::dump(v);
  auto back = json::parse(text);
  ST_CHECK(json::dump(back) == text);
  ST_CHECK(json::dump(json::Value::number(0.1), 0) == "0.1");
  ST_CHECK(json::dump(json::Value::number(NAN), 0) == "null");
  ST_CHECK(json::dump(json::Value::string("a\x01"), 0) == "\"a\\u0001\"");
  ST_CHECK(json::parse(json::dump(json::Value::number(1.0 / 3), 0)).num == 1.0 / 3);
}

inline void testPlan() {
  auto p = plan::Reader().read(json::parse(R"({"cases": [
    {"name": "ref", "cublas": {"m": 4, "n": 8, "k": 16, "dtype": "bf16"}},
    {"name": "k", "module": "m.cubin", "kernel": "f", "grid": [2, 3], "block": [128], "smem": 70000,
     "args": [{"tensor": "A", "dtype": "bf16", "shape": [4, 16], "init": {"random": {"seed": 7, "lo": -2, "hi": 2}}},
              {"tensor": "C", "dtype": "bf16", "shape": [4, 8], "init": {"zeros": true}, "output": true, "save": "C.bin"},
              {"i32": 4}, {"f32": 0.5}],
     "time": {"warmup": 2, "reps": 9, "rotate": "auto"},
     "compare": {"tensor": "C", "with": "ref", "withTensor": "C", "rtol": 0.05}},
    {"name": "cp", "copy": {"bytes": 1024}, "time": {"rotate": 3}}]})"));
  ST_CHECK(p.cases.size() == 3);
  ST_CHECK(p.cases[0].kind == plan::Case::Cublas && p.cases[0].gemm.transB && p.cases[0].flops == 2.0 * 4 * 8 * 16);
  ST_CHECK(p.cases[0].gemm.a.seed == 1 && p.cases[0].gemm.b.seed == 2);
  auto& k = p.cases[1];
  ST_CHECK(k.grid[0] == 2 && k.grid[1] == 3 && k.grid[2] == 1 && k.block[0] == 128 && k.smem == 70000);
  ST_CHECK(k.args.size() == 4 && k.args[0].isTensor && k.args[0].init.seed == 7 && k.args[0].init.lo == -2);
  ST_CHECK(k.args[1].init.kind == plan::Init::Zeros && k.args[1].output && k.args[1].bytes() == 64);
  ST_CHECK(!k.args[2].isTensor && k.args[2].scalarType == "i32" && k.args[3].value == 0.5);
  ST_CHECK(k.time.on && k.time.reps == 9 && k.time.rotate == 0);
  ST_CHECK(k.compare.on && k.compare.with == "ref" && k.compare.rtol == 0.05 && k.compare.atol == 0.01);
  ST_CHECK(p.cases[2].kind == plan::Case::Copy && p.cases[2].copyBytes == 1024 && p.cases[2].time.rotate == 3);
  ST_CHECK(p.cases[2].bytes == 2048);

  const std::string kHead = R"({"cases": [{"name": "k", "module": "m", "kernel": "f", "grid": [1], "block": [1], "args": [)";
  ST_CHECK(contains(planError(kHead + R"({"tensor": "A", "dtype": "bf61", "shape": [1]}]}]})"), "cases[0].args[0].dtype: unknown dtype 'bf61'"));
  ST_CHECK(contains(planError(kHead + R"({"tensor": "A", "shape": [1]}]}]})"), "cases[0].args[0]: missing 'dtype'"));
  ST_CHECK(contains(planError(kHead + R"({"tensor": "A", "dtype": "f32", "shape": [1.5]}]}]})"), "shape[0]: must be an integer"));
  ST_CHECK(contains(planError(kHead + R"({"x": 1}]}]})"), "cases[0].args[0]: must be a tensor"));
  ST_CHECK(contains(planError(kHead + R"(], "compare": {"tensor": "C", "with": "z"}}]})"), "no tensor 'C'"));
  ST_CHECK(contains(planError(kHead + R"({"tensor": "C", "dtype": "f32", "shape": [1]}], "compare": {"tensor": "C", "with": "z"}}]})"),
                    "no earlier case named 'z'"));
  ST_CHECK(contains(planError(R"({"cases": [{"name": "a", "copy": {"bytes": 1}}, {"name": "a", "copy": {"bytes": 1}}]})"), "duplicate case name"));
  ST_CHECK(contains(planError(R"({"cases": [{"name": "a", "cublas": {"m": 1, "n": 1, "k": 1, "dtype": "f32"}}]})"), "bf16 or f16"));
  ST_CHECK(contains(planError(R"({"cases": [{"name": "a", "copy": {"bytes": 1}, "time": {"rotate": "often"}}]})"), "rotate"));
  ST_CHECK(contains(planError(R"([])"), "must be a JSON object"));
}

inline uint32_t enc(const num::MiniFloat& f, double x) { return num::encodeMini(f, x); }

inline void testNumbers() {
  using num::kBF16; using num::kF16; using num::kE4M3; using num::kE5M2;
  ST_CHECK(enc(kBF16, 1.0) == 0x3F80 && enc(kBF16, -2.0) == 0xC000);
  ST_CHECK(enc(kBF16, 1.0 + std::ldexp(1, -8)) == 0x3F80);       // tie, to even
  ST_CHECK(enc(kBF16, 1.0 + 3 * std::ldexp(1, -8)) == 0x3F82);   // tie, to even (up)
  ST_CHECK(enc(kBF16, 1.0 + std::ldexp(1, -8) + 1e-12) == 0x3F81);  // above the tie: once-rounded from double
  ST_CHECK(enc(kF16, 65504) == 0x7BFF && enc(kF16, 65520) == 0x7C00 && enc(kF16, 65519) == 0x7BFF);
  ST_CHECK(enc(kF16, std::ldexp(1, -24)) == 0x0001 && enc(kF16, std::ldexp(1, -26)) == 0x0000);
  ST_CHECK(enc(kF16, -0.0) == 0x8000 && enc(kF16, INFINITY) == 0x7C00);
  ST_CHECK(enc(kE4M3, 448) == 0x7E && enc(kE4M3, 1000) == 0x7E && enc(kE4M3, -1000) == 0xFE && enc(kE4M3, NAN) == 0x7F);
  ST_CHECK(enc(kE4M3, 1.0) == 0x38 && enc(kE4M3, std::ldexp(1, -9)) == 0x01);
  ST_CHECK(enc(kE5M2, 57344) == 0x7B && enc(kE5M2, 1.0) == 0x3C && enc(kE5M2, 1e6) == 0x7B && enc(kE5M2, -INFINITY) == 0xFB);
  ST_CHECK(enc(kE4M3, INFINITY) == 0x7E && enc(kBF16, 1e39) == 0x7F80);
  ST_CHECK(num::decodeMini(kE4M3, 0x7E) == 448 && std::isnan(num::decodeMini(kE4M3, 0x7F)));
  ST_CHECK(num::decodeMini(kBF16, 0x3F80) == 1.0 && std::isinf(num::decodeMini(kF16, 0xFC00)));
  // Every finite bit pattern decodes to a value that encodes back to itself.
  int bad = 0;
  for (uint32_t b = 0; b < 65536; b++) {
    double x = num::decodeMini(kBF16, b);
    if (!std::isnan(x) && enc(kBF16, x) != b) bad++;
    x = num::decodeMini(kF16, b);
    if (!std::isnan(x) && enc(kF16, x) != b) bad++;
  }
  for (uint32_t b = 0; b < 256; b++) {
    double x = num::decodeMini(kE4M3, b);
    if (!std::isnan(x) && enc(kE4M3, x) != b) bad++;
    x = num::decodeMini(kE5M2, b);  // its inf patterns saturate; the rest round-trip
    if (!std::isnan(x) && !std::isinf(x) && enc(kE5M2, x) != b) bad++;
  }
  ST_CHECK(bad == 0);
  uint8_t buf[8];
  num::store(num::DType::BF16, buf, 3.0);
  ST_CHECK(buf[0] == 0x40 && buf[1] == 0x40);  // little-endian 0x4040
  ST_CHECK(num::load(num::DType::BF16, buf) == 3.0);
  num::store(num::DType::I32, buf, -7.9);
  ST_CHECK(num::load(num::DType::I32, buf) == -7);
  num::store(num::DType::I8, buf, 200);
  ST_CHECK(num::load(num::DType::I8, buf) == -56);
  num::store(num::DType::U16, buf, -1);
  ST_CHECK(num::load(num::DType::U16, buf) == 65535);
  num::store(num::DType::U32, buf, 4294967295.0);
  ST_CHECK(num::load(num::DType::U32, buf) == 4294967295.0);
}

inline void testRandom() {
  // splitmix64's published first output for state 0.
  ST_CHECK(num::splitmix(0, 0) == 0xE220A8397B1DCDAFull);
  auto& bf = *num::findDType("bf16");
  auto& i8 = *num::findDType("i8");
  std::vector<uint8_t> a(2 * 200000), b(2 * 200000);
  num::fillRandom(bf, 5, -1, 1, 200000, a.data());  // threaded
  for (size_t i = 0; i < 200000; i++) num::store(bf.t, b.data() + 2 * i, num::randomValue(bf, 5, i, -1, 1));
  ST_CHECK(a == b);
  double lo = 1, hi = -1, sum = 0;
  for (size_t i = 0; i < 200000; i++) {
    double x = num::load(bf.t, a.data() + 2 * i);
    lo = std::min(lo, x); hi = std::max(hi, x); sum += x;
  }
  ST_CHECK(lo >= -1 && hi <= 1 && lo < -0.99 && hi > 0.99 && std::fabs(sum / 200000) < 0.01);
  int seen[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < 4000; i++) {
    double v = num::randomValue(i8, 3, i, 0, 3);
    if (v >= 0 && v <= 3 && v == std::floor(v)) seen[static_cast<int>(v)]++;
  }
  ST_CHECK(seen[0] > 800 && seen[1] > 800 && seen[2] > 800 && seen[3] > 800 && seen[0] + seen[1] + seen[2] + seen[3] == 4000);
  ST_CHECK(num::uniform(1, 0) != num::uniform(2, 0));
}

inline void testCompare() {
  auto& f32 = *num::findDType("f32");
  float got[4] = {1.0f, 2.0f, 3.1f, 4.0f}, want[4] = {1.0f, 2.0f, 3.0f, 4.0f};
  auto s = num::compare(f32, reinterpret_cast<uint8_t*>(got), f32, reinterpret_cast<uint8_t*>(want), 4, 0.01, 0.01);
  ST_CHECK(s.mismatches == 1 && s.firstBad == 2 && std::fabs(s.maxAbs - 0.1) < 1e-6);
  s = num::compare(f32, reinterpret_cast<uint8_t*>(got), f32, reinterpret_cast<uint8_t*>(want), 4, 0.05, 0.0);
  ST_CHECK(s.mismatches == 0);
  got[0] = NAN;
  s = num::compare(f32, reinterpret_cast<uint8_t*>(got), f32, reinterpret_cast<uint8_t*>(want), 4, 1, 1);
  ST_CHECK(s.mismatches == 1 && s.firstBad == 0);
}

inline int run() {
  testJson();
  testPlan();
  testNumbers();
  testRandom();
  testCompare();
  std::printf("selftest: %d checks, %d failed\n", checks(), failures());
  return failures() ? 1 : 0;
}

}  // namespace selftest
