// tilemoe GPU runner: runs a JSON plan of kernel launches, cuBLAS GEMMs and copies on one
// GPU, times them, compares outputs and writes results JSON. Host-only code on the CUDA
// driver API loaded with dlopen, so it builds without a driver:
//   nvcc -O2 -std=c++17 runner.cpp -o runner -ldl     (or g++ -I<cuda>/include ... -ldl)
// Usage:
//   runner PLAN.json [--out RESULTS.json] [--skip CASE]...
//   runner --selftest
//   runner --gen DTYPE SEED LO HI COUNT OUT.bin      (the random fill, for cross-checks)
// Exit codes: 0 all cases ok; 1 some case failed or mismatched; 2 no driver or device;
// 3 bad usage or plan.
#include <algorithm>
#include <array>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cublas.h"
#include "driver.h"
#include "json.h"
#include "numeric.h"
#include "plan.h"
#include "selftest.h"

namespace {

struct CaseError : std::runtime_error {
  bool contextLost;
  CaseError(const std::string& m, bool lost = false) : std::runtime_error(m), contextLost(lost) {}
};

using Bytes = std::vector<uint8_t>;

std::string dirOf(const std::string& path) {
  auto p = path.find_last_of('/');
  return p == std::string::npos ? "." : path.substr(0, p);
}
std::string resolvePath(const std::string& dir, const std::string& p) {
  return (!p.empty() && p[0] == '/') ? p : dir + "/" + p;
}
bool readFile(const std::string& path, std::string& out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  out = ss.str();
  return true;
}
bool writeFile(const std::string& path, const void* data, size_t n) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  bool ok = std::fwrite(data, 1, n, f) == n;
  return std::fclose(f) == 0 && ok;
}

// Random fills of big tensors cost seconds; several cases of one plan share their inputs.
class FillCache {
 public:
  std::shared_ptr<const Bytes> get(const num::DTypeInfo& d, const plan::Init& in, size_t count) {
    char key[160];
    std::snprintf(key, sizeof key, "%s|%llu|%.17g|%.17g|%zu", d.name, static_cast<unsigned long long>(in.seed), in.lo, in.hi, count);
    for (auto& e : entries_)
      if (e.first == key) return e.second;
    auto b = std::make_shared<Bytes>(count * d.bytes);
    num::fillRandom(d, in.seed, in.lo, in.hi, count, b->data());
    entries_.emplace_back(key, b);
    total_ += b->size();
    while (total_ > kLimit && entries_.size() > 1) {
      total_ -= entries_.front().second->size();
      entries_.erase(entries_.begin());
    }
    return b;
  }

 private:
  static constexpr size_t kLimit = size_t(4) << 30;
  std::vector<std::pair<std::string, std::shared_ptr<const Bytes>>> entries_;
  size_t total_ = 0;
};

struct HostTensor {
  const num::DTypeInfo* dtype;
  Bytes data;
};

class Runner {
 public:
  Runner(drv::Api& cu, std::string planDir) : cu_(cu), planDir_(std::move(planDir)) {}

  // Returns "" or why the device cannot be used.
  std::string open(int device, json::Value& info) {
    CUresult r = cu_.init(0);
    if (r != CUDA_SUCCESS) return "cuInit failed: " + drv::errorName(cu_, r);
    int n = 0;
    r = cu_.deviceGetCount(&n);
    if (r != CUDA_SUCCESS || n == 0) return "no CUDA device";
    if (device >= n) return "device " + std::to_string(device) + " requested, " + std::to_string(n) + " present";
    if ((r = cu_.deviceGet(&dev_, device)) != CUDA_SUCCESS) return "cuDeviceGet: " + drv::errorName(cu_, r);
    if ((r = cu_.devicePrimaryCtxRetain(&ctx_, dev_)) != CUDA_SUCCESS) return "cuDevicePrimaryCtxRetain: " + drv::errorName(cu_, r);
    if ((r = cu_.ctxSetCurrent(ctx_)) != CUDA_SUCCESS) return "cuCtxSetCurrent: " + drv::errorName(cu_, r);
    // A blocking stream: the fills (cuMemcpyHtoD/DtoD, cuMemsetD8) go to the legacy default
    // stream and may still be in flight when they return; a blocking stream waits for them.
    if ((r = cu_.streamCreate(&stream_, CU_STREAM_DEFAULT)) != CUDA_SUCCESS) return "cuStreamCreate: " + drv::errorName(cu_, r);
    char name[256] = {0};
    cu_.deviceGetName(name, sizeof name, dev_);
    int l2 = 0, sms = 0, major = 0, minor = 0, drvVer = 0, smemOptin = 0;
    cu_.deviceGetAttribute(&l2, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, dev_);
    cu_.deviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev_);
    cu_.deviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev_);
    cu_.deviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev_);
    cu_.deviceGetAttribute(&smemOptin, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, dev_);
    cu_.driverGetVersion(&drvVer);
    size_t freeB = 0, totalB = 0;
    cu_.memGetInfo(&freeB, &totalB);
    l2_ = static_cast<size_t>(l2);
    info.set("name", json::Value::string(name));
    info.set("cc", json::Value::string(std::to_string(major) + "." + std::to_string(minor)));
    info.set("sms", json::Value::number(sms));
    info.set("l2_bytes", json::Value::number(l2));
    info.set("smem_optin_bytes", json::Value::number(smemOptin));
    info.set("memory_bytes", json::Value::number(static_cast<double>(totalB)));
    info.set("driver_version", json::Value::number(drvVer));
    return "";
  }

  void close() {
    if (contextLost_) return;
    if (blasHandle_) blas_.destroy(blasHandle_);
    for (auto& m : modules_) cu_.moduleUnload(m.second);
    if (stream_) cu_.streamDestroy(stream_);
    if (ctx_) cu_.devicePrimaryCtxRelease(dev_);
  }

  bool contextLost() const { return contextLost_; }

  // Which (case, tensor) outputs later cases compare against; only those are kept.
  void keepForCompare(const plan::Plan& p) {
    for (auto& c : p.cases)
      if (c.compare.on && !c.compare.with.empty()) keep_.insert(c.compare.with + '\n' + c.compare.withTensor);
  }

  json::Value run(const plan::Case& c) {
    json::Value res = json::Value::object();
    res.set("name", json::Value::string(c.name));
    res.set("status", json::Value::string("running"));  // replaced below; keeps the key near the top
    Scope scope(*this);
    try {
      switch (c.kind) {
        case plan::Case::Kernel: runKernel(c, scope, res); break;
        case plan::Case::Cublas: runCublas(c, scope, res); break;
        case plan::Case::Copy: runCopy(c, scope, res); break;
        case plan::Case::LayerCall: runLayer(c, scope, res); break;
      }
      if (res.get("status")->str == "running") res.set("status", json::Value::string("ok"));
    } catch (const CaseError& e) {
      res.set("status", json::Value::string("error"));
      res.set("error", json::Value::string(e.what()));
      if (e.contextLost) {
        contextLost_ = true;
        res.set("context_lost", json::Value::boolean(true));
      }
    }
    return res;
  }

 private:
  drv::Api& cu_;
  std::string planDir_;
  CUdevice dev_ = 0;
  CUcontext ctx_ = nullptr;
  CUstream stream_ = nullptr;
  size_t l2_ = 0;
  bool contextLost_ = false;
  std::map<std::string, CUmodule> modules_;
  std::map<std::string, HostTensor> kept_;
  std::set<std::string> keep_;
  FillCache fills_;
  blas::Api blas_;
  bool blasLoaded_ = false;
  blas::Handle blasHandle_ = nullptr;

  // Frees a case's device memory and events, also when the case throws.
  struct Scope {
    Runner& r;
    std::vector<CUdeviceptr> ptrs;
    std::vector<CUevent> events;
    explicit Scope(Runner& r) : r(r) {}
    ~Scope() {
      if (r.contextLost_) return;  // the driver refuses every call now; nothing to give back
      r.cu_.streamSynchronize(r.stream_);
      for (auto e : events) r.cu_.eventDestroy(e);
      for (auto p : ptrs) r.cu_.memFree(p);
    }
  };

  void check(CUresult r, const std::string& what) {
    if (r == CUDA_SUCCESS) return;
    throw CaseError(drv::errorName(cu_, r) + " in " + what, drv::isSticky(r));
  }

  CUdeviceptr alloc(Scope& s, size_t bytes, const std::string& what) {
    CUdeviceptr p = 0;
    // Zero-size tensors still need a distinct, valid pointer to pass.
    check(cu_.memAlloc(&p, std::max<size_t>(bytes, 256)), "cuMemAlloc(" + std::to_string(bytes) + " bytes) for " + what);
    s.ptrs.push_back(p);
    return p;
  }

  // Fills copy 0 from the plan's init, then the other copies from copy 0.
  void fill(const plan::Init& in, const num::DTypeInfo& d, size_t count, const std::vector<CUdeviceptr>& copies,
            const std::string& what) {
    size_t bytes = count * d.bytes;
    if (bytes == 0) return;
    if (in.kind == plan::Init::Zeros) {
      for (auto p : copies) check(cu_.memsetD8(p, 0, bytes), "cuMemsetD8 for " + what);
      return;
    }
    if (in.kind == plan::Init::File) {
      std::string path = resolvePath(planDir_, in.file), data;
      if (!readFile(path, data)) throw CaseError(what + ": cannot read " + path);
      if (data.size() != bytes)
        throw CaseError(what + ": " + path + " has " + std::to_string(data.size()) + " bytes, expected " + std::to_string(bytes));
      check(cu_.memcpyHtoD(copies[0], data.data(), bytes), "cuMemcpyHtoD for " + what);
    } else {
      auto host = fills_.get(d, in, count);
      check(cu_.memcpyHtoD(copies[0], host->data(), bytes), "cuMemcpyHtoD for " + what);
    }
    for (size_t i = 1; i < copies.size(); i++) check(cu_.memcpyDtoD(copies[i], copies[0], bytes), "cuMemcpyDtoD for " + what);
  }

  // Enough copies of the working set that consecutive timed launches miss in L2.
  int rotation(const plan::Timing& t, size_t perCopy) {
    if (!t.on) return 1;
    if (t.rotate > 0) return t.rotate;
    if (perCopy == 0) return 1;
    size_t n = 2 * l2_ / perCopy + 1;
    size_t freeB = 0, totalB = 0;
    cu_.memGetInfo(&freeB, &totalB);
    size_t fit = static_cast<size_t>(0.7 * freeB) / perCopy;
    n = std::min<size_t>({n, std::max<size_t>(fit, 1), 256});
    return static_cast<int>(n);
  }

  Bytes download(CUdeviceptr p, size_t bytes, const std::string& what) {
    Bytes b(bytes);
    if (bytes) check(cu_.memcpyDtoH(b.data(), p, bytes), "cuMemcpyDtoH for " + what);
    return b;
  }

  // Synchronizes after a launch so that an asynchronous fault is pinned on its kernel.
  void syncAfter(const std::string& what) { check(cu_.streamSynchronize(stream_), what + " (reported at cuStreamSynchronize)"); }

  template <typename Launch>
  void time(const plan::Timing& t, int copies, Scope& s, json::Value& res, Launch launch, const plan::Case& c) {
    res.set("rotate", json::Value::number(copies));
    if (!t.on) return;
    CUdeviceptr flush = 0;
    size_t flushBytes = 2 * l2_;
    if (t.flushL2 && flushBytes) flush = alloc(s, flushBytes, "L2 flush buffer");
    auto flushL2 = [&] {
      if (flush) check(cu_.memsetD8Async(flush, 0, flushBytes, stream_), "cuMemsetD8Async (L2 flush)");
    };
    res.set("flush_l2", json::Value::boolean(flush != 0));
    // Copy 0 ran the checked launch just before; start after it so no launch reuses its predecessor's inputs.
    for (int w = 0; w < t.warmup; w++) { flushL2(); launch((1 + w) % copies); }
    std::vector<CUevent> ev(2 * static_cast<size_t>(t.reps));
    for (auto& e : ev) {
      check(cu_.eventCreate(&e, CU_EVENT_DEFAULT), "cuEventCreate");
      s.events.push_back(e);
    }
    for (int r = 0; r < t.reps; r++) {
      flushL2();
      check(cu_.eventRecord(ev[2 * r], stream_), "cuEventRecord");
      launch((1 + t.warmup + r) % copies);
      check(cu_.eventRecord(ev[2 * r + 1], stream_), "cuEventRecord");
    }
    syncAfter("timed launches");
    std::vector<double> ms(t.reps);
    for (int r = 0; r < t.reps; r++) {
      float x = 0;
      check(cu_.eventElapsedTime(&x, ev[2 * r], ev[2 * r + 1]), "cuEventElapsedTime");
      ms[r] = x;
    }
    std::sort(ms.begin(), ms.end());
    double median = t.reps % 2 ? ms[t.reps / 2] : 0.5 * (ms[t.reps / 2 - 1] + ms[t.reps / 2]);
    res.set("median_ms", json::Value::number(median));
    res.set("min_ms", json::Value::number(ms.front()));
    res.set("max_ms", json::Value::number(ms.back()));
    res.set("reps", json::Value::number(t.reps));
    if (c.flops > 0 && median > 0) res.set("tflops", json::Value::number(c.flops / (median * 1e-3) / 1e12));
    if (c.bytes > 0 && median > 0) res.set("gbps", json::Value::number(c.bytes / (median * 1e-3) / 1e9));
  }

  void keepIfNeeded(const plan::Case& c, const std::string& tensor, const num::DTypeInfo* d, const Bytes& data) {
    std::string key = c.name + '\n' + tensor;
    if (keep_.count(key)) kept_[key] = HostTensor{d, data};
  }

  void compare(const plan::Case& c, const num::DTypeInfo& d, const Bytes& got, json::Value& res) {
    const plan::Compare& cmp = c.compare;
    json::Value out = json::Value::object();
    const num::DTypeInfo* wd = nullptr;
    Bytes fileData;
    const Bytes* want = nullptr;
    if (!cmp.with.empty()) {
      out.set("with", json::Value::string(cmp.with + (cmp.withTensor != cmp.tensor ? "." + cmp.withTensor : "")));
      auto it = kept_.find(cmp.with + '\n' + cmp.withTensor);
      if (it == kept_.end()) {
        out.set("pass", json::Value::boolean(false));
        out.set("error", json::Value::string("reference case '" + cmp.with + "' produced no output (it failed or was skipped)"));
        res.set("compare", out);
        res.set("status", json::Value::string("mismatch"));
        res.set("error", json::Value::string("no reference output from '" + cmp.with + "'"));
        return;
      }
      wd = it->second.dtype;
      want = &it->second.data;
    } else {
      out.set("with", json::Value::string(cmp.file));
      std::string path = resolvePath(planDir_, cmp.file), s;
      if (!readFile(path, s)) throw CaseError("compare: cannot read " + path);
      fileData.assign(s.begin(), s.end());
      wd = cmp.fileDtype;
      want = &fileData;
    }
    size_t n = got.size() / d.bytes, wn = want->size() / wd->bytes;
    if (n != wn) throw CaseError("compare: " + cmp.tensor + " has " + std::to_string(n) + " elements, reference has " + std::to_string(wn));
    auto st = num::compare(d, got.data(), *wd, want->data(), n, cmp.rtol, cmp.atol);
    bool pass = st.mismatches == 0;
    out.set("count", json::Value::number(static_cast<double>(n)));
    out.set("max_abs", json::Value::number(st.maxAbs));
    out.set("max_rel", json::Value::number(st.maxRel));
    out.set("mismatches", json::Value::number(static_cast<double>(st.mismatches)));
    out.set("rtol", json::Value::number(cmp.rtol));
    out.set("atol", json::Value::number(cmp.atol));
    out.set("pass", json::Value::boolean(pass));
    if (!pass) {
      json::Value f = json::Value::object();
      f.set("index", json::Value::number(static_cast<double>(st.firstBad)));
      f.set("got", json::Value::number(st.firstGot));
      f.set("want", json::Value::number(st.firstWant));
      out.set("first_mismatch", f);
      res.set("status", json::Value::string("mismatch"));
      res.set("error", json::Value::string(std::to_string(st.mismatches) + " of " + std::to_string(n) +
                                           " elements differ (first at " + std::to_string(st.firstBad) + ")"));
    }
    res.set("compare", out);
  }

  void save(const std::string& file, const Bytes& data, json::Value& saved) {
    std::string path = resolvePath(planDir_, file);
    if (!writeFile(path, data.data(), data.size())) throw CaseError("cannot write " + path);
    saved.push(json::Value::string(path));
  }

  CUfunction function(const plan::Case& c) { return function(c, c.kernel); }

  // Kernel `symbol` of the case's module (its own kernel, or a zero kernel that clears a tensor).
  CUfunction function(const plan::Case& c, const std::string& symbol) {
    std::string path = resolvePath(planDir_, c.module);
    auto it = modules_.find(path);
    if (it == modules_.end()) {
      std::string image;
      if (!readFile(path, image)) throw CaseError("cannot read module " + path);
      CUmodule m = nullptr;
      check(cu_.moduleLoadData(&m, image.c_str()), "cuModuleLoadData(" + c.module + ")");
      it = modules_.emplace(path, m).first;
    }
    CUfunction f = nullptr;
    check(cu_.moduleGetFunction(&f, it->second, symbol.c_str()), "cuModuleGetFunction(" + symbol + ")");
    return f;
  }

  // The TMA descriptor of a tensorMap arg over tensor `t` at `ptr`, as the generated launcher
  // builds it (src/codegen/cuda/host.ts): dims innermost first, zero fill outside the tensor.
  // A tensor with an empty dim or a row pitch that is not a multiple of 16 bytes gets a zeroed
  // map: the kernel tests the same condition and takes its cp.async path instead.
  CUtensorMap tensorMap(const plan::Arg& a, const plan::Arg& t, CUdeviceptr ptr) {
    CUtensorMap m;
    std::memset(&m, 0, sizeof m);
    const int bytes = t.dtype->bytes;
    bool usable = t.shape.back() * bytes % 16 == 0;
    for (auto d : t.shape) usable = usable && d > 0;
    if (!usable) return m;
    if (!cu_.tensorMapEncodeTiled) throw CaseError("the driver has no cuTensorMapEncodeTiled (tensor map over " + t.tensor + ")");
    CUtensorMapDataType type;
    const std::string dt = t.dtype->name;
    if (dt == "bf16") type = CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
    else if (dt == "f16") type = CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
    else if (dt == "f32") type = CU_TENSOR_MAP_DATA_TYPE_FLOAT32;
    else if (dt == "i32") type = CU_TENSOR_MAP_DATA_TYPE_INT32;
    else if (dt == "u32") type = CU_TENSOR_MAP_DATA_TYPE_UINT32;
    else if (bytes == 1) type = CU_TENSOR_MAP_DATA_TYPE_UINT8;
    else throw CaseError("no TMA data type for " + dt + " (tensor map over " + t.tensor + ")");
    const size_t rank = t.shape.size();
    cuuint64_t dims[5], strides[5];
    cuuint32_t box[5], estr[5];
    cuuint64_t pitch = static_cast<cuuint64_t>(bytes);
    for (size_t i = 0; i < rank; i++) {
      dims[i] = static_cast<cuuint64_t>(t.shape[rank - 1 - i]);
      box[i] = static_cast<cuuint32_t>(a.box[rank - 1 - i]);
      estr[i] = 1;
      if (i + 1 < rank) { pitch *= dims[i]; strides[i] = pitch; }
    }
    CUtensorMapSwizzle sw = a.swizzle == 128 ? CU_TENSOR_MAP_SWIZZLE_128B : a.swizzle == 64 ? CU_TENSOR_MAP_SWIZZLE_64B
                          : a.swizzle == 32 ? CU_TENSOR_MAP_SWIZZLE_32B : CU_TENSOR_MAP_SWIZZLE_NONE;
    check(cu_.tensorMapEncodeTiled(&m, type, static_cast<cuuint32_t>(rank), reinterpret_cast<void*>(ptr), dims, strides, box, estr,
                                   CU_TENSOR_MAP_INTERLEAVE_NONE, sw, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                   CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE),
          "cuTensorMapEncodeTiled(" + t.tensor + ")");
    return m;
  }

  void runKernel(const plan::Case& c, Scope& s, json::Value& res) {
    CUfunction fn = function(c);
    std::string k = "kernel " + c.kernel;
    if (c.smem > 48 * 1024)
      check(cu_.funcSetAttribute(fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, static_cast<int>(c.smem)),
            "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES=" + std::to_string(c.smem) + ") for " + k);
    int regs = 0, local = 0, staticSmem = 0;
    cu_.funcGetAttribute(&regs, CU_FUNC_ATTRIBUTE_NUM_REGS, fn);
    cu_.funcGetAttribute(&local, CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES, fn);
    cu_.funcGetAttribute(&staticSmem, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, fn);
    res.set("regs", json::Value::number(regs));
    res.set("local_bytes", json::Value::number(local));
    res.set("static_smem", json::Value::number(staticSmem));

    int copies = 1;
    std::vector<std::vector<CUdeviceptr>> bufs = tensorArgs(c, s, copies);
    std::vector<std::array<uint8_t, 8>> scalars(c.args.size());
    for (size_t i = 0; i < c.args.size(); i++) {
      const plan::Arg& a = c.args[i];
      if (!a.isTensor) {
        auto& b = scalars[i];
        b.fill(0);
        const std::string& t = a.scalarType;
        if (t == "i32") { int32_t v = static_cast<int32_t>(a.value); std::memcpy(b.data(), &v, 4); }
        else if (t == "u32") { uint32_t v = static_cast<uint32_t>(a.value); std::memcpy(b.data(), &v, 4); }
        else if (t == "i64") { int64_t v = static_cast<int64_t>(a.value); std::memcpy(b.data(), &v, 8); }
        else if (t == "u64") { uint64_t v = static_cast<uint64_t>(a.value); std::memcpy(b.data(), &v, 8); }
        else if (t == "f32") { float v = static_cast<float>(a.value); std::memcpy(b.data(), &v, 4); }
        else { double v = a.value; std::memcpy(b.data(), &v, 8); }
      }
    }
    // Tensor maps: one per copy of the rotated inputs, each over that copy's tensor.
    std::vector<std::vector<CUtensorMap>> maps(c.args.size());
    for (size_t i = 0; i < c.args.size(); i++) {
      const plan::Arg& a = c.args[i];
      if (!a.isTensorMap) continue;
      size_t t = 0;
      while (!(c.args[t].isTensor && c.args[t].tensor == a.mapTensor)) t++;
      for (int j = 0; j < copies; j++) maps[i].push_back(tensorMap(a, c.args[t], bufs[t][j]));
    }
    std::vector<std::vector<void*>> params(copies, std::vector<void*>(c.args.size()));
    for (int j = 0; j < copies; j++)
      for (size_t i = 0; i < c.args.size(); i++)
        params[j][i] = c.args[i].isTensor ? static_cast<void*>(&bufs[i][j])
                     : c.args[i].isTensorMap ? static_cast<void*>(&maps[i][j])
                     : static_cast<void*>(scalars[i].data());

    // Tensors cleared by a zero kernel (clearKernel): each its function, pointer and byte count.
    std::vector<CUfunction> zeroFns(c.args.size(), nullptr);
    bool pdl = false;
    for (size_t i = 0; i < c.args.size(); i++)
      if (c.args[i].isTensor && !c.args[i].clearKernel.empty()) {
        if (c.args[i].bytes() % 4 != 0 || c.args[i].bytes() / 4 > 2147483647)
          throw CaseError("tensor " + c.args[i].tensor + ": a zero kernel clears whole 4-byte words, at most INT32_MAX of them");
        zeroFns[i] = function(c, c.args[i].clearKernel);
        pdl = true;
      }
    if (pdl && !cu_.launchKernelEx) throw CaseError("the driver has no cuLaunchKernelEx (a tensor cleared by a zero kernel needs the PDL launch)");
    auto launch = [&](int j) {
      // Inside the timed region, like the launcher's cudaMemsetAsync it stands for.
      for (size_t i = 0; i < c.args.size(); i++)
        if (c.args[i].isTensor && c.args[i].clearBeforeLaunch && c.args[i].bytes() > 0)
          check(cu_.memsetD8Async(bufs[i][j], 0, c.args[i].bytes(), stream_), "cuMemsetD8Async for tensor " + c.args[i].tensor);
      // The zero kernels last, launched plainly as the generated launcher does (same grid and
      // block): the case's kernel must follow one of them directly to be launched with PDL.
      for (size_t i = 0; i < c.args.size(); i++) {
        if (!zeroFns[i]) continue;
        // NAME_zero(unsigned* P, int n): one 4-byte word a thread, 256 a block (zero-kernel.ts).
        CUdeviceptr p = bufs[i][j];
        int words = static_cast<int>(c.args[i].bytes() / 4);
        void* zp[] = {&p, &words};
        unsigned blocks = static_cast<unsigned>(words / 256 + 1);
        check(cu_.launchKernel(zeroFns[i], blocks, 1, 1, 256, 1, 1, 0, stream_, zp, nullptr),
              "cuLaunchKernel(" + c.args[i].clearKernel + ") clearing tensor " + c.args[i].tensor);
      }
      if (pdl) {
        CUlaunchAttribute attr[1];
        std::memset(attr, 0, sizeof attr);
        attr[0].id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
        attr[0].value.programmaticStreamSerializationAllowed = 1;
        CUlaunchConfig cfg;
        std::memset(&cfg, 0, sizeof cfg);
        cfg.gridDimX = c.grid[0]; cfg.gridDimY = c.grid[1]; cfg.gridDimZ = c.grid[2];
        cfg.blockDimX = c.block[0]; cfg.blockDimY = c.block[1]; cfg.blockDimZ = c.block[2];
        cfg.sharedMemBytes = c.smem;
        cfg.hStream = stream_;
        cfg.attrs = attr;
        cfg.numAttrs = 1;
        check(cu_.launchKernelEx(&cfg, fn, params[j].data(), nullptr), "cuLaunchKernelEx(" + c.kernel + ", programmatic stream serialization)");
        return;
      }
      check(cu_.launchKernel(fn, c.grid[0], c.grid[1], c.grid[2], c.block[0], c.block[1], c.block[2], c.smem, stream_,
                             params[j].data(), nullptr),
            "cuLaunchKernel(" + c.kernel + ")");
    };
    launch(0);
    syncAfter(k);
    json::Value saved = json::Value::array();
    readBack(c, bufs, saved, res);
    if (!saved.arr.empty()) res.set("saved", saved);
    time(c.time, copies, s, res, launch, c);
  }

  // Device copies of a case's tensor args (bufs[i][copy]; none for scalars), filled from
  // their inits; `copies` comes back as the rotation count.
  std::vector<std::vector<CUdeviceptr>> tensorArgs(const plan::Case& c, Scope& s, int& copies) {
    size_t perCopy = 0;
    for (auto& a : c.args)
      if (a.isTensor) perCopy += a.bytes();
    copies = rotation(c.time, perCopy);
    std::vector<std::vector<CUdeviceptr>> bufs(c.args.size());
    for (size_t i = 0; i < c.args.size(); i++) {
      const plan::Arg& a = c.args[i];
      if (!a.isTensor) continue;
      for (int j = 0; j < copies; j++) bufs[i].push_back(alloc(s, a.bytes(), "tensor " + a.tensor));
      fill(a.init, *a.dtype, a.count(), bufs[i], "tensor " + a.tensor);
    }
    check(cu_.ctxSynchronize(), "cuCtxSynchronize after filling the inputs");
    return bufs;
  }

  // After the checked launch: saves, keeps and compares the tensors that ask for it.
  void readBack(const plan::Case& c, const std::vector<std::vector<CUdeviceptr>>& bufs, json::Value& saved, json::Value& res) {
    for (size_t i = 0; i < c.args.size(); i++) {
      const plan::Arg& a = c.args[i];
      if (!a.isTensor) continue;
      bool compared = c.compare.on && c.compare.tensor == a.tensor;
      bool kept = keep_.count(c.name + '\n' + a.tensor) > 0;
      if (!a.output && a.save.empty() && !compared && !kept) continue;
      Bytes data = download(bufs[i][0], a.bytes(), "tensor " + a.tensor);
      if (!a.save.empty()) save(a.save, data, saved);
      keepIfNeeded(c, a.tensor, a.dtype, data);
      if (compared) compare(c, *a.dtype, data, res);
    }
  }

  struct LayerLib {
    void* handle = nullptr;
    int (*call)(void* const*, int, int64_t, void*, size_t, CUstream) = nullptr;
    size_t (*workspaceBytes)(int64_t) = nullptr;
    const char* (*errorString)(int) = nullptr;
  };
  std::map<std::string, LayerLib> layers_;

  // dlopens a layer library once; its CUDA runtime finds the primary context made current in open().
  const LayerLib& layerLib(const plan::Case& c) {
    std::string path = resolvePath(planDir_, c.layer.library), key = path + '\n' + c.layer.symbol;
    auto it = layers_.find(key);
    if (it != layers_.end()) return it->second;
    LayerLib l;
    l.handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!l.handle) throw CaseError("dlopen(" + path + "): " + dlerror());
    const std::string& sym = c.layer.symbol;
    auto need = [&](const std::string& name) {
      void* p = dlsym(l.handle, name.c_str());
      if (!p) throw CaseError(path + " has no symbol " + name);
      return p;
    };
    l.call = reinterpret_cast<decltype(l.call)>(need(sym + "_buffers"));
    l.workspaceBytes = reinterpret_cast<decltype(l.workspaceBytes)>(need(sym + "_workspace_bytes"));
    l.errorString = reinterpret_cast<decltype(l.errorString)>(need(sym + "_error_string"));
    return layers_.emplace(key, l).first->second;
  }

  void runLayer(const plan::Case& c, Scope& s, json::Value& res) {
    const LayerLib& lib = layerLib(c);
    const plan::Layer& L = c.layer;
    size_t wsBytes = lib.workspaceBytes(L.tokens);
    res.set("workspace_bytes", json::Value::number(static_cast<double>(wsBytes)));
    for (auto& sl : L.workspace)
      if (sl.offset + sl.bytes > wsBytes)
        throw CaseError("workspace slice " + sl.name + " [" + std::to_string(sl.offset) + ", +" + std::to_string(sl.bytes) +
                        ") lies past the layer's " + std::to_string(wsBytes) + " workspace bytes");
    int copies = 1;
    std::vector<std::vector<CUdeviceptr>> bufs = tensorArgs(c, s, copies);
    CUdeviceptr ws = alloc(s, wsBytes, "layer workspace");
    std::vector<std::vector<void*>> ptrs(copies);
    for (int j = 0; j < copies; j++)
      for (auto& b : bufs) ptrs[j].push_back(reinterpret_cast<void*>(b[j]));
    auto launch = [&](int j) {
      int err = lib.call(ptrs[j].data(), static_cast<int>(ptrs[j].size()), L.tokens, reinterpret_cast<void*>(ws), wsBytes, stream_);
      if (err != 0) throw CaseError(L.symbol + " returned " + std::to_string(err) + ": " + lib.errorString(err));
    };
    launch(0);
    syncAfter("layer " + L.symbol);
    json::Value saved = json::Value::array();
    readBack(c, bufs, saved, res);
    for (auto& sl : L.workspace) save(sl.save, download(ws + sl.offset, sl.bytes, "workspace slice " + sl.name), saved);
    if (!saved.arr.empty()) res.set("saved", saved);
    time(c.time, copies, s, res, launch, c);
  }

  std::string ensureCublas() {
    if (blasHandle_) return "";
    if (!blasLoaded_) {
      std::string err = blas::load(blas_);
      if (!err.empty()) return err;
      blasLoaded_ = true;
    }
    int st = blas_.create(&blasHandle_);
    if (st != 0) { blasHandle_ = nullptr; return "cublasCreate: " + blas::statusName(blas_, st); }
    st = blas_.setStream(blasHandle_, stream_);
    if (st != 0) return "cublasSetStream: " + blas::statusName(blas_, st);
    return "";
  }

  void runCublas(const plan::Case& c, Scope& s, json::Value& res) {
    std::string err = ensureCublas();
    if (!err.empty()) throw CaseError(err);
    res.set("cublas", json::Value::string(blas_.path));
    const plan::Gemm& g = c.gemm;
    const num::DTypeInfo& d = *g.dtype;
    size_t na = g.m * g.k, nb = g.n * g.k, nc = g.m * g.n;
    int copies = rotation(c.time, (na + nb + nc) * d.bytes);
    std::vector<CUdeviceptr> A, B, C;
    for (int j = 0; j < copies; j++) {
      A.push_back(alloc(s, na * d.bytes, "cuBLAS A"));
      B.push_back(alloc(s, nb * d.bytes, "cuBLAS B"));
      C.push_back(alloc(s, nc * d.bytes, "cuBLAS C"));
    }
    fill(g.a, d, na, A, "cuBLAS A");
    fill(g.b, d, nb, B, "cuBLAS B");
    plan::Init zeros;
    zeros.kind = plan::Init::Zeros;
    fill(zeros, d, nc, C, "cuBLAS C");
    check(cu_.ctxSynchronize(), "cuCtxSynchronize after filling the inputs");
    int type = d.t == num::DType::BF16 ? blas::R_16BF : blas::R_16F;
    // cuBLAS is column-major. Row-major C[M,N] is column-major C^T[N,M] = B' * A^T, where
    // A^T is row-major A read as column-major [K,M] (ld K) and B' is B[N,K] read as
    // column-major [K,N] (ld K) transposed, or B[K,N] read as column-major [N,K] (ld N).
    int opB = g.transB ? blas::OP_T : blas::OP_N;
    int ldb = static_cast<int>(g.transB ? g.k : g.n);
    float alpha = 1.0f, beta = 0.0f;
    auto launch = [&](int j) {
      int st = blas_.gemmEx(blasHandle_, opB, blas::OP_N, static_cast<int>(g.n), static_cast<int>(g.m),
                            static_cast<int>(g.k), &alpha, reinterpret_cast<const void*>(B[j]), type, ldb,
                            reinterpret_cast<const void*>(A[j]), type, static_cast<int>(g.k), &beta,
                            reinterpret_cast<void*>(C[j]), type, static_cast<int>(g.n), blas::COMPUTE_32F,
                            blas::GEMM_DEFAULT);
      if (st != 0) throw CaseError("cublasGemmEx: " + blas::statusName(blas_, st));
    };
    launch(0);
    syncAfter("cublasGemmEx");
    bool keepC = keep_.count(c.name + "\nC") > 0;
    if (keepC || !g.save.empty() || c.compare.on) {
      Bytes data = download(C[0], nc * d.bytes, "cuBLAS C");
      json::Value saved = json::Value::array();
      if (!g.save.empty()) save(g.save, data, saved);
      if (!saved.arr.empty()) res.set("saved", saved);
      keepIfNeeded(c, "C", &d, data);
      if (c.compare.on && c.compare.tensor == "C") compare(c, d, data, res);
    }
    time(c.time, copies, s, res, launch, c);
  }

  void runCopy(const plan::Case& c, Scope& s, json::Value& res) {
    CUdeviceptr src = alloc(s, c.copyBytes, "copy source"), dst = alloc(s, c.copyBytes, "copy destination");
    check(cu_.memsetD8(src, 1, c.copyBytes), "cuMemsetD8 for copy source");
    check(cu_.ctxSynchronize(), "cuCtxSynchronize after cuMemsetD8");
    auto launch = [&](int) { check(cu_.memcpyDtoDAsync(dst, src, c.copyBytes, stream_), "cuMemcpyDtoDAsync"); };
    launch(0);
    syncAfter("cuMemcpyDtoDAsync");
    time(c.time, 1, s, res, launch, c);
  }
};

void printTable(const json::Value& cases) {
  std::printf("%-44s %-8s %10s %10s %9s %9s  %s\n", "case", "status", "median ms", "min ms", "TFLOP/s", "GB/s", "compare / error");
  for (auto& r : cases.arr) {
    auto num = [&](const char* k, const char* fmt) -> std::string {
      auto v = r.get(k);
      if (!v || !v->isNumber()) return "-";
      char b[32];
      std::snprintf(b, sizeof b, fmt, v->num);
      return b;
    };
    std::string name = r.get("name")->str;
    if (name.size() > 44) name = name.substr(0, 41) + "...";
    std::string note;
    if (auto cmp = r.get("compare")) {
      char b[96];
      auto ma = cmp->get("max_abs");
      std::snprintf(b, sizeof b, "%s max_abs=%.3g", cmp->get("pass")->b ? "pass" : "FAIL", ma ? ma->num : 0.0);
      note = b;
    }
    if (auto e = r.get("error")) note += (note.empty() ? "" : "; ") + e->str;
    std::printf("%-44s %-8s %10s %10s %9s %9s  %s\n", name.c_str(), r.get("status")->str.c_str(),
                num("median_ms", "%.4f").c_str(), num("min_ms", "%.4f").c_str(), num("tflops", "%.1f").c_str(),
                num("gbps", "%.0f").c_str(), note.c_str());
  }
}

int usage() {
  std::fprintf(stderr,
               "usage: runner PLAN.json [--out RESULTS.json] [--skip CASE]...\n"
               "       runner --selftest\n"
               "       runner --gen DTYPE SEED LO HI COUNT OUT.bin\n");
  return 3;
}

int gen(int argc, char** argv) {
  if (argc != 8) return usage();
  auto d = num::findDType(argv[2]);
  if (!d) { std::fprintf(stderr, "unknown dtype %s\n", argv[2]); return 3; }
  size_t count = std::strtoull(argv[6], nullptr, 10);
  Bytes b(count * d->bytes);
  num::fillRandom(*d, std::strtoull(argv[3], nullptr, 10), std::strtod(argv[4], nullptr), std::strtod(argv[5], nullptr), count, b.data());
  if (!writeFile(argv[7], b.data(), b.size())) { std::fprintf(stderr, "cannot write %s\n", argv[7]); return 3; }
  return 0;
}

int writeResults(const std::string& out, const json::Value& results) {
  if (out.empty()) return 0;
  std::string text = json::dump(results) + "\n";
  if (!writeFile(out, text.data(), text.size())) { std::fprintf(stderr, "runner: cannot write %s\n", out.c_str()); return 3; }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "--selftest") return selftest::run();
  if (argc >= 2 && std::string(argv[1]) == "--gen") return gen(argc, argv);
  std::string planPath, outPath;
  std::set<std::string> skip;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--out" && i + 1 < argc) outPath = argv[++i];
    else if (a == "--skip" && i + 1 < argc) skip.insert(argv[++i]);
    else if (!a.empty() && a[0] != '-' && planPath.empty()) planPath = a;
    else return usage();
  }
  if (planPath.empty()) return usage();

  std::string text;
  if (!readFile(planPath, text)) { std::fprintf(stderr, "runner: cannot read %s\n", planPath.c_str()); return 3; }
  plan::Plan p;
  try {
    p = plan::Reader().read(json::parse(text));
  } catch (const json::ParseError& e) {
    std::fprintf(stderr, "runner: %s:%s\n", planPath.c_str(), e.what());
    return 3;
  } catch (const plan::PlanError& e) {
    std::fprintf(stderr, "runner: %s: %s\n", planPath.c_str(), e.what());
    return 3;
  }

  json::Value results = json::Value::object();
  json::Value device = json::Value::object();
  json::Value cases = json::Value::array();
  auto skipped = [&](size_t i, const std::string& why) {
    json::Value r = json::Value::object();
    r.set("name", json::Value::string(p.cases[i].name));
    r.set("status", json::Value::string("skipped"));
    r.set("error", json::Value::string(why));
    cases.push(r);
  };
  auto notRun = [&](size_t from, const std::string& why) {
    for (size_t i = from; i < p.cases.size(); i++) skipped(i, why);
  };

  drv::Api cu;
  std::string err = drv::load(cu);
  Runner runner(cu, dirOf(planPath));
  if (err.empty()) err = runner.open(p.device, device);
  if (!err.empty()) {
    std::fprintf(stderr, "runner: %s\n", err.c_str());
    results.set("error", json::Value::string(err));
    notRun(0, err);
    results.set("cases", cases);
    writeResults(outPath, results);
    return 2;
  }
  results.set("device", device);
  runner.keepForCompare(p);

  bool allOk = true;
  for (size_t i = 0; i < p.cases.size(); i++) {
    const plan::Case& c = p.cases[i];
    if (skip.count(c.name)) { skipped(i, "skipped by --skip"); continue; }
    std::fprintf(stderr, "[%zu/%zu] %s\n", i + 1, p.cases.size(), c.name.c_str());
    json::Value r = runner.run(c);
    if (r.get("status")->str != "ok") {
      allOk = false;
      std::fprintf(stderr, "runner: case '%s' %s: %s\n", c.name.c_str(), r.get("status")->str.c_str(),
                   r.get("error") ? r.get("error")->str.c_str() : "");
    }
    cases.push(r);
    if (runner.contextLost()) {
      std::string why = "not run: the CUDA context was lost in case '" + c.name + "' (" + r.get("error")->str +
                        "); rerun the plan with --skip '" + c.name + "'";
      std::fprintf(stderr, "runner: context lost in case '%s': %s; stopping\n", c.name.c_str(), r.get("error")->str.c_str());
      results.set("context_lost", json::Value::string(c.name));
      notRun(i + 1, why);
      break;
    }
  }
  results.set("cases", cases);
  printTable(cases);
  runner.close();
  int w = writeResults(outPath, results);
  if (w) return w;
  return allOk ? 0 : 1;
}
