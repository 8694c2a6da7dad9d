// A stand-in libcuda.so.1 for testing the runner on machines without a GPU. "Device"
// memory is host memory; kernels are host functions looked up by name; time is a fake
// clock that each launch advances, so timings are deterministic.
//
// Kernels (all take pointers first, then i32 scalars):
//   gemm_bt(A bf16[M,K], B bf16[N,K], C bf16[M,N], M, N, K)   C = A * B^T, f32 accumulate
//   gemm_bt_wrong(...)                                        same, then C[0] += 1
//   axpy(x f32[n], y f32[n], n, a f32)                        y += a * x
//   fault()                                                   an illegal address, at the next sync
//   zero(p u32*, n i32)                                       p[0 .. n) = 0 (a launcher's zero kernel: n 4-byte words)
// Environment: FAKECUDA_DEVICES (default 1), FAKECUDA_L2 (bytes, default 1 MiB),
// FAKECUDA_LOG (file: one line per launch: kernel name and first pointer argument, then "pdl"
// for a cuLaunchKernelEx with programmatic stream serialization; one per cuMemsetD8Async:
// "memset_async BYTES").
#include <cuda.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "../../../runtime/cuda/numeric.h"

namespace {
CUresult sticky = CUDA_SUCCESS;  // once set, every call fails, as a lost context does
CUresult pending = CUDA_SUCCESS;  // reported at the next synchronization
double clockMs = 0;
int ctxToken, funcTokens[6], streamToken;

struct Event { double t; };

const char* envOr(const char* k, const char* d) {
  const char* v = std::getenv(k);
  return v ? v : d;
}

void logLaunch(const char* name, void** params, bool pdl = false) {
  const char* path = std::getenv("FAKECUDA_LOG");
  if (!path) return;
  FILE* f = std::fopen(path, "a");
  if (!f) return;
  unsigned long long p0 = 0;
  if (params && std::strcmp(name, "fault") != 0) std::memcpy(&p0, params[0], sizeof p0);
  std::fprintf(f, "%s %llx%s\n", name, p0, pdl ? " pdl" : "");
  std::fclose(f);
}

float bf(const void* base, size_t i) { return static_cast<float>(num::load(num::DType::BF16, static_cast<const uint8_t*>(base) + 2 * i)); }

void gemmBt(void** params, bool wrong) {
  CUdeviceptr a, b, c;
  std::memcpy(&a, params[0], 8);
  std::memcpy(&b, params[1], 8);
  std::memcpy(&c, params[2], 8);
  int M = *static_cast<int*>(params[3]), N = *static_cast<int*>(params[4]), K = *static_cast<int*>(params[5]);
  auto A = reinterpret_cast<const void*>(a), B = reinterpret_cast<const void*>(b);
  auto C = reinterpret_cast<uint8_t*>(c);
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      float acc = 0;
      for (int k = 0; k < K; k++) acc += bf(A, size_t(m) * K + k) * bf(B, size_t(n) * K + k);
      num::store(num::DType::BF16, C + 2 * (size_t(m) * N + n), acc);
    }
  if (wrong) num::store(num::DType::BF16, C, num::load(num::DType::BF16, C) + 1.0);
  clockMs += 1e-6 * M * N * K;
}

void axpy(void** params) {
  CUdeviceptr x, y;
  std::memcpy(&x, params[0], 8);
  std::memcpy(&y, params[1], 8);
  int n = *static_cast<int*>(params[2]);
  float a = *static_cast<float*>(params[3]);
  auto X = reinterpret_cast<const float*>(x);
  auto Y = reinterpret_cast<float*>(y);
  for (int i = 0; i < n; i++) Y[i] += a * X[i];
  clockMs += 0.001 * (1 + (n % 7));  // varies a little with n, so median and min can differ
}

void zero(void** params) {
  CUdeviceptr p;
  int words;
  std::memcpy(&p, params[0], 8);
  std::memcpy(&words, params[1], 4);
  const long long bytes = 4LL * words;
  std::memset(reinterpret_cast<void*>(p), 0, static_cast<size_t>(bytes));
  clockMs += double(bytes) / 1e9;  // 1 TB/s of writes, as the fake memset
}
}  // namespace

#define CHECK_STICKY() if (sticky != CUDA_SUCCESS) return sticky
#define API extern "C" __attribute__((visibility("default"))) CUresult

API cuInit(unsigned) { return CUDA_SUCCESS; }
API cuDriverGetVersion(int* v) { *v = 13000; return CUDA_SUCCESS; }
API cuDeviceGetCount(int* n) { *n = std::atoi(envOr("FAKECUDA_DEVICES", "1")); return CUDA_SUCCESS; }
API cuDeviceGet(CUdevice* d, int i) { *d = i; return CUDA_SUCCESS; }
API cuDeviceGetName(char* name, int len, CUdevice) { std::snprintf(name, len, "Fake GPU"); return CUDA_SUCCESS; }
API cuDeviceGetAttribute(int* v, CUdevice_attribute a, CUdevice) {
  switch (a) {
    case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: *v = std::atoi(envOr("FAKECUDA_L2", "1048576")); break;
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *v = 4; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *v = 9; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *v = 0; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: *v = 232448; break;
    default: *v = 0;
  }
  return CUDA_SUCCESS;
}
API cuDevicePrimaryCtxRetain(CUcontext* c, CUdevice) { *c = reinterpret_cast<CUcontext>(&ctxToken); return CUDA_SUCCESS; }
API cuDevicePrimaryCtxRelease_v2(CUdevice) { return CUDA_SUCCESS; }
API cuCtxSetCurrent(CUcontext) { return CUDA_SUCCESS; }
API cuCtxSynchronize() { CHECK_STICKY(); return CUDA_SUCCESS; }
API cuMemGetInfo_v2(size_t* f, size_t* t) { *f = size_t(1) << 30; *t = size_t(2) << 30; return CUDA_SUCCESS; }
API cuMemAlloc_v2(CUdeviceptr* p, size_t n) {
  CHECK_STICKY();
  if (n > (size_t(1) << 32)) return CUDA_ERROR_OUT_OF_MEMORY;
  void* m = std::malloc(n);
  if (!m) return CUDA_ERROR_OUT_OF_MEMORY;
  std::memset(m, 0xAB, n);  // not zero: a runner that forgets to fill would be caught
  *p = reinterpret_cast<CUdeviceptr>(m);
  return CUDA_SUCCESS;
}
API cuMemFree_v2(CUdeviceptr p) { CHECK_STICKY(); std::free(reinterpret_cast<void*>(p)); return CUDA_SUCCESS; }
API cuMemcpyHtoD_v2(CUdeviceptr d, const void* s, size_t n) { CHECK_STICKY(); std::memcpy(reinterpret_cast<void*>(d), s, n); return CUDA_SUCCESS; }
API cuMemcpyDtoH_v2(void* d, CUdeviceptr s, size_t n) { CHECK_STICKY(); std::memcpy(d, reinterpret_cast<void*>(s), n); return CUDA_SUCCESS; }
API cuMemcpyDtoD_v2(CUdeviceptr d, CUdeviceptr s, size_t n) { CHECK_STICKY(); std::memcpy(reinterpret_cast<void*>(d), reinterpret_cast<void*>(s), n); return CUDA_SUCCESS; }
API cuMemcpyDtoDAsync_v2(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream) {
  CHECK_STICKY();
  std::memcpy(reinterpret_cast<void*>(d), reinterpret_cast<void*>(s), n);
  clockMs += double(n) * 2 / 1e9;  // 2 TB/s
  return CUDA_SUCCESS;
}
API cuMemsetD8_v2(CUdeviceptr d, unsigned char v, size_t n) { CHECK_STICKY(); std::memset(reinterpret_cast<void*>(d), v, n); return CUDA_SUCCESS; }
// Logged with its size and address; the clock advances as for 1 TB/s of writes, so a memset
// inside a timed span shows in the median (the runner's L2 flush and the clearBeforeLaunch clear).
API cuMemsetD8Async(CUdeviceptr d, unsigned char v, size_t n, CUstream) {
  CHECK_STICKY();
  std::memset(reinterpret_cast<void*>(d), v, n);
  if (const char* path = std::getenv("FAKECUDA_LOG"))
    if (FILE* f = std::fopen(path, "a")) { std::fprintf(f, "memset_async %zu %llx\n", n, static_cast<unsigned long long>(d)); std::fclose(f); }
  clockMs += double(n) / 1e9;  // 1 TB/s of writes
  return CUDA_SUCCESS;
}
API cuModuleLoadData(CUmodule* m, const void* image) {
  CHECK_STICKY();
  // A "module" is a text file; one that starts with "bad" is rejected as the driver would.
  if (std::strncmp(static_cast<const char*>(image), "bad", 3) == 0) return CUDA_ERROR_INVALID_IMAGE;
  *m = reinterpret_cast<CUmodule>(std::malloc(1));
  return CUDA_SUCCESS;
}
API cuModuleUnload(CUmodule m) { std::free(m); return CUDA_SUCCESS; }
API cuModuleGetFunction(CUfunction* f, CUmodule, const char* name) {
  CHECK_STICKY();
  const char* names[] = {"gemm_bt", "gemm_bt_wrong", "axpy", "fault", "tensormap_echo", "zero"};
  for (int i = 0; i < 6; i++)
    if (std::strcmp(name, names[i]) == 0) { *f = reinterpret_cast<CUfunction>(&funcTokens[i]); return CUDA_SUCCESS; }
  return CUDA_ERROR_NOT_FOUND;
}
API cuFuncSetAttribute(CUfunction, CUfunction_attribute a, int v) {
  CHECK_STICKY();
  if (a == CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES && v > 232448) return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}
API cuFuncGetAttribute(int* v, CUfunction_attribute a, CUfunction) { *v = a == CU_FUNC_ATTRIBUTE_NUM_REGS ? 96 : 0; return CUDA_SUCCESS; }
namespace {
CUresult launch(CUfunction f, unsigned bx, unsigned by, unsigned bz, unsigned smem, void** params, bool pdl) {
  CHECK_STICKY();
  if (bx * by * bz > 1024 || smem > 232448) return CUDA_ERROR_INVALID_VALUE;
  int i = static_cast<int>(reinterpret_cast<int*>(f) - funcTokens);
  const char* names[] = {"gemm_bt", "gemm_bt_wrong", "axpy", "fault", "tensormap_echo", "zero"};
  logLaunch(names[i], params, pdl);
  if (i == 0 || i == 1) gemmBt(params, i == 1);
  else if (i == 2) axpy(params);
  else if (i == 5) zero(params);
  else if (i == 4) {
    // tensormap_echo(int64_t* out, CUtensorMap map): the map's first 16 words, as encoded below.
    int64_t* out = *reinterpret_cast<int64_t**>(params[0]);
    std::memcpy(out, params[1], 16 * sizeof(int64_t));
  }
  else pending = CUDA_ERROR_ILLEGAL_ADDRESS;
  return CUDA_SUCCESS;
}
}  // namespace
API cuLaunchKernel(CUfunction f, unsigned, unsigned, unsigned, unsigned bx, unsigned by, unsigned bz, unsigned smem,
                   CUstream, void** params, void**) {
  return launch(f, bx, by, bz, smem, params, false);
}
// Logs "pdl" when the programmatic stream serialization attribute is set to 1.
API cuLaunchKernelEx(const CUlaunchConfig* c, CUfunction f, void** params, void**) {
  bool pdl = false;
  for (unsigned a = 0; a < c->numAttrs; a++)
    if (c->attrs[a].id == CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION && c->attrs[a].value.programmaticStreamSerializationAllowed == 1) pdl = true;
  return launch(f, c->blockDimX, c->blockDimY, c->blockDimZ, c->sharedMemBytes, params, pdl);
}
// Writes its arguments into the (opaque) map so that tensormap_echo can show them: address,
// data type, rank, dims, strides, box, element strides, interleave, swizzle, L2, OOB fill.
API cuTensorMapEncodeTiled(CUtensorMap* m, CUtensorMapDataType t, cuuint32_t rank, void* addr, const cuuint64_t* dims,
                           const cuuint64_t* strides, const cuuint32_t* box, const cuuint32_t* estr, CUtensorMapInterleave il,
                           CUtensorMapSwizzle sw, CUtensorMapL2promotion l2, CUtensorMapFloatOOBfill oob) {
  CHECK_STICKY();
  if (rank != 2) return CUDA_ERROR_INVALID_VALUE;
  if (reinterpret_cast<uintptr_t>(addr) % 16 != 0 || strides[0] % 16 != 0) return CUDA_ERROR_INVALID_VALUE;
  int64_t w[16] = {static_cast<int64_t>(reinterpret_cast<uintptr_t>(addr)), t, rank, static_cast<int64_t>(dims[0]), static_cast<int64_t>(dims[1]),
                   static_cast<int64_t>(strides[0]), box[0], box[1], estr[0], estr[1], il, sw, l2, oob, 0, 0};
  std::memcpy(m, w, sizeof w);
  return CUDA_SUCCESS;
}
API cuStreamCreate(CUstream* s, unsigned) { *s = reinterpret_cast<CUstream>(&streamToken); return CUDA_SUCCESS; }
API cuStreamSynchronize(CUstream) {
  CHECK_STICKY();
  if (pending != CUDA_SUCCESS) { sticky = pending; return sticky; }
  return CUDA_SUCCESS;
}
API cuStreamDestroy_v2(CUstream) { return CUDA_SUCCESS; }
API cuEventCreate(CUevent* e, unsigned) { CHECK_STICKY(); *e = reinterpret_cast<CUevent>(new Event{0}); return CUDA_SUCCESS; }
API cuEventRecord(CUevent e, CUstream) { CHECK_STICKY(); reinterpret_cast<Event*>(e)->t = clockMs; return CUDA_SUCCESS; }
API cuEventSynchronize(CUevent) { CHECK_STICKY(); return CUDA_SUCCESS; }
API cuEventElapsedTime(float* ms, CUevent a, CUevent b) {
  CHECK_STICKY();
  *ms = static_cast<float>(reinterpret_cast<Event*>(b)->t - reinterpret_cast<Event*>(a)->t);
  return CUDA_SUCCESS;
}
API cuEventDestroy_v2(CUevent e) { delete reinterpret_cast<Event*>(e); return CUDA_SUCCESS; }
API cuGetErrorName(CUresult r, const char** s) {
  switch (r) {
    case CUDA_ERROR_ILLEGAL_ADDRESS: *s = "CUDA_ERROR_ILLEGAL_ADDRESS"; break;
    case CUDA_ERROR_INVALID_VALUE: *s = "CUDA_ERROR_INVALID_VALUE"; break;
    case CUDA_ERROR_NOT_FOUND: *s = "CUDA_ERROR_NOT_FOUND"; break;
    case CUDA_ERROR_INVALID_IMAGE: *s = "CUDA_ERROR_INVALID_IMAGE"; break;
    case CUDA_ERROR_OUT_OF_MEMORY: *s = "CUDA_ERROR_OUT_OF_MEMORY"; break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}
API cuGetErrorString(CUresult r, const char** s) { return cuGetErrorName(r, s); }

// The fake cuBLAS in this same library advances the same clock.
extern "C" __attribute__((visibility("default"))) void fakecuda_advance(double ms) { clockMs += ms; }
