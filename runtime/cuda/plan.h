// The runner's plan: what to allocate, fill, launch, time and compare. Parsed from JSON
// up front, so a malformed plan fails before any GPU work, with the JSON path of the fault.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "json.h"
#include "numeric.h"

namespace plan {

struct PlanError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Init {
  enum Kind { Random, File, Zeros } kind = Random;
  uint64_t seed = 1;
  double lo = -1, hi = 1;
  std::string file;
};

struct Arg {
  bool isTensor = false;
  // tensor map: a TMA descriptor (cuTensorMapEncodeTiled) over this case's tensor `mapTensor`,
  // passed by value; box extents outermost first, swizzle in bytes (0, 32, 64, 128)
  bool isTensorMap = false;
  std::string mapTensor;
  std::vector<int64_t> box;
  int swizzle = 0;
  // tensor
  std::string tensor;
  const num::DTypeInfo* dtype = nullptr;
  std::vector<int64_t> shape;
  Init init;
  bool output = false;
  // Zeroed on the stream right before every launch (checked, warm-up and timed): what a
  // generated launcher does for an output written only by atomic adds (split-K). Timed.
  bool clearBeforeLaunch = false;
  // Or zeroed before every launch by `clearKernel`, a zero kernel of the case's module
  // (NAME_zero(unsigned* P, int n) of a generated sm_90a launcher, n the tensor's 4-byte words), launched plainly;
  // the case's kernel is then launched with programmatic dependent launch behind it, as the
  // launcher does (docs/QUANT.md, "Clearing by a zero kernel"). Timed.
  std::string clearKernel;
  std::string save;
  // scalar: its type name (i32, u32, i64, u64, f32, f64) and value
  std::string scalarType;
  double value = 0;

  size_t count() const {
    size_t n = 1;
    for (auto d : shape) n *= static_cast<size_t>(d);
    return n;
  }
  size_t bytes() const { return count() * dtype->bytes; }
};

struct Timing {
  bool on = false;
  int warmup = 5, reps = 50;
  int rotate = 0;  // 0 = auto
  // Overwrite a buffer of twice the L2 before each launch (outside the timed span), so that
  // inputs too large to rotate (a layer's expert weights) are not read from L2.
  bool flushL2 = false;
};

// A slice of a layer's workspace to download after the checked launch (the routing, say).
struct WorkspaceSlice {
  std::string name;
  uint64_t offset = 0, bytes = 0;
  std::string save;
};

// A whole generated MoE layer: a shared library built from moe_layer_<name>.cu, called
// through its <symbol>_buffers entry with the case's tensors (in the launcher's order),
// the token count and a workspace of <symbol>_workspace_bytes(tokens) bytes.
struct Layer {
  std::string library, symbol;
  int64_t tokens = 0;
  std::vector<WorkspaceSlice> workspace;
};

struct Compare {
  bool on = false;
  std::string tensor;      // this case's tensor
  std::string with;        // another case's name ...
  std::string withTensor;  // ... and its tensor (cuBLAS cases call theirs "C")
  std::string file;        // or a raw reference file
  const num::DTypeInfo* fileDtype = nullptr;
  double rtol = 1e-2, atol = 1e-2;
};

struct Gemm {
  int64_t m = 0, n = 0, k = 0;
  const num::DTypeInfo* dtype = nullptr;
  bool transB = true;
  Init a, b;
  std::string save;
};

struct Case {
  std::string name;
  enum Kind { Kernel, Cublas, Copy, LayerCall } kind = Kernel;
  std::string module, kernel;
  unsigned grid[3] = {1, 1, 1}, block[3] = {1, 1, 1};
  unsigned smem = 0;
  std::vector<Arg> args;
  Gemm gemm;
  uint64_t copyBytes = 0;
  Layer layer;
  Timing time;
  Compare compare;
  double flops = 0, bytes = 0;  // optional, for the throughput columns
};

struct Plan {
  int device = 0;
  std::vector<Case> cases;
};

class Reader {
 public:
  Plan read(const json::Value& root) {
    need(root.isObject(), "", "the plan must be a JSON object");
    Plan p;
    if (auto d = root.get("device")) p.device = static_cast<int>(integer(*d, "device", 0, 1 << 20));
    auto cases = root.get("cases");
    need(cases && cases->isArray(), "cases", "must be an array");
    for (size_t i = 0; i < cases->arr.size(); i++) p.cases.push_back(readCase(cases->arr[i], "cases[" + std::to_string(i) + "]"));
    for (size_t i = 0; i < p.cases.size(); i++)
      for (size_t j = 0; j < i; j++)
        need(p.cases[i].name != p.cases[j].name, "cases[" + std::to_string(i) + "].name",
             "duplicate case name '" + p.cases[i].name + "'");
    for (size_t i = 0; i < p.cases.size(); i++) checkCompareTarget(p, i);
    return p;
  }

 private:
  static void need(bool ok, const std::string& path, const std::string& msg) {
    if (!ok) throw PlanError((path.empty() ? std::string("plan") : path) + ": " + msg);
  }
  static double number(const json::Value& v, const std::string& path) {
    need(v.isNumber(), path, "must be a number");
    return v.num;
  }
  static int64_t integer(const json::Value& v, const std::string& path, double lo, double hi) {
    double x = number(v, path);
    need(x == static_cast<double>(static_cast<int64_t>(x)), path, "must be an integer");
    need(x >= lo && x <= hi, path, "out of range");
    return static_cast<int64_t>(x);
  }
  static std::string str(const json::Value& v, const std::string& path) {
    need(v.isString(), path, "must be a string");
    return v.str;
  }
  static const json::Value& field(const json::Value& o, const std::string& key, const std::string& path) {
    auto v = o.get(key);
    need(v != nullptr, path, "missing '" + key + "'");
    return *v;
  }
  static const num::DTypeInfo* dtype(const json::Value& v, const std::string& path) {
    auto d = num::findDType(str(v, path));
    need(d != nullptr, path, "unknown dtype '" + v.str + "'");
    return d;
  }
  static void dim3(const json::Value& v, unsigned out[3], const std::string& path) {
    need(v.isArray() && v.arr.size() >= 1 && v.arr.size() <= 3, path, "must be an array of 1 to 3 integers");
    for (size_t i = 0; i < 3; i++)
      out[i] = i < v.arr.size() ? static_cast<unsigned>(integer(v.arr[i], path + "[" + std::to_string(i) + "]", 1, 4294967295.0)) : 1;
  }

  static Init readInit(const json::Value* v, const std::string& path, uint64_t defaultSeed) {
    Init in;
    in.seed = defaultSeed;
    if (!v) return in;
    need(v->isObject(), path, "must be an object");
    if (auto r = v->get("random")) {
      need(r->isObject(), path + ".random", "must be an object");
      in.kind = Init::Random;
      if (auto s = r->get("seed")) in.seed = static_cast<uint64_t>(integer(*s, path + ".random.seed", 0, 9007199254740991.0));
      if (auto lo = r->get("lo")) in.lo = number(*lo, path + ".random.lo");
      if (auto hi = r->get("hi")) in.hi = number(*hi, path + ".random.hi");
      need(in.lo <= in.hi, path + ".random", "lo must be <= hi");
    } else if (auto f = v->get("file")) {
      in.kind = Init::File;
      in.file = str(*f, path + ".file");
    } else if (v->get("zeros")) {
      in.kind = Init::Zeros;
    } else {
      need(false, path, "must have 'random', 'file' or 'zeros'");
    }
    return in;
  }

  static Arg readArg(const json::Value& v, const std::string& path, uint64_t index) {
    need(v.isObject(), path, "must be an object");
    Arg a;
    if (auto t = v.get("tensor")) {
      a.isTensor = true;
      a.tensor = str(*t, path + ".tensor");
      a.dtype = dtype(field(v, "dtype", path), path + ".dtype");
      auto& sh = field(v, "shape", path);
      need(sh.isArray(), path + ".shape", "must be an array");
      for (size_t i = 0; i < sh.arr.size(); i++)
        a.shape.push_back(integer(sh.arr[i], path + ".shape[" + std::to_string(i) + "]", 0, 1e15));
      a.init = readInit(v.get("init"), path + ".init", index + 1);
      if (auto o = v.get("output")) { need(o->isBool(), path + ".output", "must be true or false"); a.output = o->b; }
      if (auto s = v.get("save")) a.save = str(*s, path + ".save");
      if (auto z = v.get("clearBeforeLaunch")) {
        need(z->isBool(), path + ".clearBeforeLaunch", "must be true or false");
        a.clearBeforeLaunch = z->b;
      }
      if (auto z = v.get("clearKernel")) {
        a.clearKernel = str(*z, path + ".clearKernel");
        need(!a.clearKernel.empty(), path + ".clearKernel", "must name the zero kernel of the case's module");
        need(!a.clearBeforeLaunch, path + ".clearKernel", "a tensor is cleared by a memset (clearBeforeLaunch) or by a zero kernel, not both");
      }
      return a;
    }
    if (auto m = v.get("tensorMap")) {
      std::string mp = path + ".tensorMap";
      need(m->isObject(), mp, "must be an object {\"tensor\": name, \"box\": [..], \"swizzle\": 0|32|64|128}");
      a.isTensorMap = true;
      a.mapTensor = str(field(*m, "tensor", mp), mp + ".tensor");
      auto& bx = field(*m, "box", mp);
      need(bx.isArray() && !bx.arr.empty() && bx.arr.size() <= 5, mp + ".box", "must be an array of 1 to 5 extents");
      for (size_t i = 0; i < bx.arr.size(); i++) a.box.push_back(integer(bx.arr[i], mp + ".box[" + std::to_string(i) + "]", 1, 256));
      a.swizzle = static_cast<int>(m->get("swizzle") ? integer(*m->get("swizzle"), mp + ".swizzle", 0, 128) : 0);
      need(a.swizzle == 0 || a.swizzle == 32 || a.swizzle == 64 || a.swizzle == 128, mp + ".swizzle", "must be 0, 32, 64 or 128");
      return a;
    }
    for (const char* t : {"i32", "u32", "i64", "u64", "f32", "f64"}) {
      if (auto x = v.get(t)) {
        a.scalarType = t;
        a.value = number(*x, path + "." + t);
        return a;
      }
    }
    need(false, path, "must be a tensor ({\"tensor\": ...}), a tensor map ({\"tensorMap\": ...}) or a scalar ({\"i32\": n}, u32, i64, u64, f32, f64)");
    return a;
  }

  static Timing readTiming(const json::Value* v, const std::string& path) {
    Timing t;
    if (!v) return t;
    need(v->isObject(), path, "must be an object");
    t.on = true;
    if (auto w = v->get("warmup")) t.warmup = static_cast<int>(integer(*w, path + ".warmup", 0, 1e6));
    if (auto r = v->get("reps")) t.reps = static_cast<int>(integer(*r, path + ".reps", 1, 1e6));
    if (auto r = v->get("rotate")) {
      if (r->isString()) need(r->str == "auto", path + ".rotate", "must be \"auto\" or a count");
      else t.rotate = static_cast<int>(integer(*r, path + ".rotate", 1, 4096));
    }
    if (auto f = v->get("flush_l2")) { need(f->isBool(), path + ".flush_l2", "must be true or false"); t.flushL2 = f->b; }
    return t;
  }

  static Compare readCompare(const json::Value* v, const std::string& path) {
    Compare c;
    if (!v) return c;
    need(v->isObject(), path, "must be an object");
    c.on = true;
    c.tensor = str(field(*v, "tensor", path), path + ".tensor");
    if (auto w = v->get("with")) {
      c.with = str(*w, path + ".with");
      c.withTensor = c.tensor;
      if (auto wt = v->get("withTensor")) c.withTensor = str(*wt, path + ".withTensor");
    } else if (auto f = v->get("file")) {
      c.file = str(*f, path + ".file");
      c.fileDtype = dtype(field(*v, "dtype", path), path + ".dtype");
    } else {
      need(false, path, "must have 'with' (a case name) or 'file' (with its 'dtype')");
    }
    if (auto r = v->get("rtol")) c.rtol = number(*r, path + ".rtol");
    if (auto a = v->get("atol")) c.atol = number(*a, path + ".atol");
    return c;
  }

  static Case readCase(const json::Value& v, const std::string& path) {
    need(v.isObject(), path, "must be an object");
    Case c;
    c.name = str(field(v, "name", path), path + ".name");
    if (auto g = v.get("cublas")) {
      c.kind = Case::Cublas;
      std::string p = path + ".cublas";
      need(g->isObject(), p, "must be an object");
      c.gemm.m = integer(field(*g, "m", p), p + ".m", 1, 2147483647.0);
      c.gemm.n = integer(field(*g, "n", p), p + ".n", 1, 2147483647.0);
      c.gemm.k = integer(field(*g, "k", p), p + ".k", 1, 2147483647.0);
      c.gemm.dtype = dtype(field(*g, "dtype", p), p + ".dtype");
      need(c.gemm.dtype->t == num::DType::BF16 || c.gemm.dtype->t == num::DType::F16, p + ".dtype",
           "cuBLAS baseline takes bf16 or f16");
      if (auto t = g->get("transB")) { need(t->isBool(), p + ".transB", "must be true or false"); c.gemm.transB = t->b; }
      c.gemm.a = readInit(g->get("a"), p + ".a", 1);
      c.gemm.b = readInit(g->get("b"), p + ".b", 2);
      if (auto s = g->get("save")) c.gemm.save = str(*s, p + ".save");
    } else if (auto cp = v.get("copy")) {
      c.kind = Case::Copy;
      need(cp->isObject(), path + ".copy", "must be an object");
      c.copyBytes = static_cast<uint64_t>(integer(field(*cp, "bytes", path + ".copy"), path + ".copy.bytes", 1, 1e15));
      c.bytes = 2.0 * static_cast<double>(c.copyBytes);
    } else if (auto l = v.get("layer")) {
      c.kind = Case::LayerCall;
      std::string p = path + ".layer";
      need(l->isObject(), p, "must be an object");
      c.layer.library = str(field(*l, "library", p), p + ".library");
      c.layer.symbol = str(field(*l, "symbol", p), p + ".symbol");
      c.layer.tokens = integer(field(*l, "tokens", p), p + ".tokens", 0, 2147483647.0);
      if (auto w = l->get("workspace")) {
        need(w->isArray(), p + ".workspace", "must be an array");
        for (size_t i = 0; i < w->arr.size(); i++) {
          std::string q = p + ".workspace[" + std::to_string(i) + "]";
          need(w->arr[i].isObject(), q, "must be an object");
          WorkspaceSlice sl;
          sl.name = str(field(w->arr[i], "name", q), q + ".name");
          sl.offset = static_cast<uint64_t>(integer(field(w->arr[i], "offset", q), q + ".offset", 0, 1e15));
          sl.bytes = static_cast<uint64_t>(integer(field(w->arr[i], "bytes", q), q + ".bytes", 0, 1e15));
          sl.save = str(field(w->arr[i], "save", q), q + ".save");
          c.layer.workspace.push_back(sl);
        }
      }
      auto& args = field(v, "args", path);
      need(args.isArray(), path + ".args", "must be an array");
      for (size_t i = 0; i < args.arr.size(); i++) {
        c.args.push_back(readArg(args.arr[i], path + ".args[" + std::to_string(i) + "]", i));
        need(c.args.back().isTensor, path + ".args[" + std::to_string(i) + "]", "a layer takes tensors only (the token count is layer.tokens)");
        need(c.args.back().clearKernel.empty(), path + ".args[" + std::to_string(i) + "].clearKernel", "only a kernel case clears by a zero kernel");
      }
    } else {
      c.kind = Case::Kernel;
      c.module = str(field(v, "module", path), path + ".module");
      c.kernel = str(field(v, "kernel", path), path + ".kernel");
      dim3(field(v, "grid", path), c.grid, path + ".grid");
      dim3(field(v, "block", path), c.block, path + ".block");
      if (auto s = v.get("smem")) c.smem = static_cast<unsigned>(integer(*s, path + ".smem", 0, 4294967295.0));
      auto& args = field(v, "args", path);
      need(args.isArray(), path + ".args", "must be an array");
      for (size_t i = 0; i < args.arr.size(); i++)
        c.args.push_back(readArg(args.arr[i], path + ".args[" + std::to_string(i) + "]", i));
      for (size_t i = 0; i < c.args.size(); i++) {
        const Arg& a = c.args[i];
        if (!a.isTensorMap) continue;
        std::string ap = path + ".args[" + std::to_string(i) + "].tensorMap";
        const Arg* t = nullptr;
        for (auto& b : c.args) if (b.isTensor && b.tensor == a.mapTensor) t = &b;
        need(t != nullptr, ap + ".tensor", "no tensor '" + a.mapTensor + "' among this case's args");
        need(t->shape.size() == a.box.size(), ap + ".box", "must have one extent per dim of tensor '" + a.mapTensor + "'");
      }
    }
    c.time = readTiming(v.get("time"), path + ".time");
    c.compare = readCompare(v.get("compare"), path + ".compare");
    if (auto f = v.get("flops")) c.flops = number(*f, path + ".flops");
    if (auto b = v.get("bytes")) c.bytes = number(*b, path + ".bytes");
    if (c.kind == Case::Cublas && c.flops == 0) c.flops = 2.0 * c.gemm.m * c.gemm.n * c.gemm.k;
    if (c.compare.on) {
      need(findTensor(c, c.compare.tensor), path + ".compare.tensor", "no tensor '" + c.compare.tensor + "' in this case");
    }
    return c;
  }

 public:
  // The tensors a case has, by name; cuBLAS cases have A, B and C.
  static bool findTensor(const Case& c, const std::string& name) {
    if (c.kind == Case::Cublas) return name == "A" || name == "B" || name == "C";
    for (auto& a : c.args)
      if (a.isTensor && a.tensor == name) return true;
    return false;
  }

 private:
  // Compare targets run earlier in the same process; their outputs are kept on the host.
  static void checkCompareTarget(const Plan& p, size_t i) {
    const Compare& c = p.cases[i].compare;
    if (!c.on || c.with.empty()) return;
    std::string path = "cases[" + std::to_string(i) + "].compare.with";
    for (size_t j = 0; j < i; j++) {
      if (p.cases[j].name != c.with) continue;
      need(findTensor(p.cases[j], c.withTensor), path, "case '" + c.with + "' has no tensor '" + c.withTensor + "'");
      return;
    }
    need(false, path, "no earlier case named '" + c.with + "' (compare targets must come first)");
  }
};

}  // namespace plan
