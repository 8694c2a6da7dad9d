// The CUDA driver API, loaded at run time with dlopen so the runner builds on machines
// without a driver (and without libcuda stubs). cuda.h is used for types and enums only.
#pragma once
#include <cuda.h>
#include <dlfcn.h>

#include <cstdio>
#include <initializer_list>
#include <string>

namespace drv {

// Member names drop the `cu` prefix: cuda.h #defines many cu* names to their _v2 symbols.
struct Api {
  void* lib = nullptr;
  CUresult (*init)(unsigned int);
  CUresult (*driverGetVersion)(int*);
  CUresult (*deviceGetCount)(int*);
  CUresult (*deviceGet)(CUdevice*, int);
  CUresult (*deviceGetName)(char*, int, CUdevice);
  CUresult (*deviceGetAttribute)(int*, CUdevice_attribute, CUdevice);
  CUresult (*devicePrimaryCtxRetain)(CUcontext*, CUdevice);
  CUresult (*devicePrimaryCtxRelease)(CUdevice);
  CUresult (*ctxSetCurrent)(CUcontext);
  CUresult (*ctxSynchronize)();
  CUresult (*memGetInfo)(size_t*, size_t*);
  CUresult (*memAlloc)(CUdeviceptr*, size_t);
  CUresult (*memFree)(CUdeviceptr);
  CUresult (*memcpyHtoD)(CUdeviceptr, const void*, size_t);
  CUresult (*memcpyDtoH)(void*, CUdeviceptr, size_t);
  CUresult (*memcpyDtoD)(CUdeviceptr, CUdeviceptr, size_t);
  CUresult (*memcpyDtoDAsync)(CUdeviceptr, CUdeviceptr, size_t, CUstream);
  CUresult (*memsetD8)(CUdeviceptr, unsigned char, size_t);
  CUresult (*memsetD8Async)(CUdeviceptr, unsigned char, size_t, CUstream);
  CUresult (*moduleLoadData)(CUmodule*, const void*);
  CUresult (*moduleUnload)(CUmodule);
  CUresult (*moduleGetFunction)(CUfunction*, CUmodule, const char*);
  CUresult (*funcSetAttribute)(CUfunction, CUfunction_attribute, int);
  CUresult (*funcGetAttribute)(int*, CUfunction_attribute, CUfunction);
  CUresult (*launchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                           CUstream, void**, void**);
  CUresult (*streamCreate)(CUstream*, unsigned int);
  CUresult (*streamSynchronize)(CUstream);
  CUresult (*streamDestroy)(CUstream);
  CUresult (*eventCreate)(CUevent*, unsigned int);
  CUresult (*eventRecord)(CUevent, CUstream);
  CUresult (*eventSynchronize)(CUevent);
  CUresult (*eventElapsedTime)(float*, CUevent, CUevent);
  CUresult (*eventDestroy)(CUevent);
  CUresult (*getErrorName)(CUresult, const char**);
  CUresult (*getErrorString)(CUresult, const char**);
  // Optional (drivers before CUDA 12 lack it): only cases cleared by a zero kernel need it
  // (the kernel behind it is launched with the programmatic stream serialization attribute).
  CUresult (*launchKernelEx)(const CUlaunchConfig*, CUfunction, void**, void**) = nullptr;
  // Optional (drivers before CUDA 12 lack it): only plans with tensor maps need it.
  CUresult (*tensorMapEncodeTiled)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                   const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                   CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill) = nullptr;
};

// Tries each name in turn: old drivers lack the newer _v2 symbols and new ones keep the old.
template <typename F>
bool resolve(void* lib, F& fn, std::initializer_list<const char*> names, std::string& missing) {
  for (const char* n : names) {
    void* p = dlsym(lib, n);
    if (p) { fn = reinterpret_cast<F>(p); return true; }
  }
  fn = nullptr;
  if (!missing.empty()) missing += ", ";
  missing += *names.begin();
  return false;
}

// Returns "" on success, or what went wrong.
inline std::string load(Api& a, const char* path = "libcuda.so.1") {
  a.lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!a.lib) return std::string(path) + " not found";
  std::string m;
  resolve(a.lib, a.init, {"cuInit"}, m);
  resolve(a.lib, a.driverGetVersion, {"cuDriverGetVersion"}, m);
  resolve(a.lib, a.deviceGetCount, {"cuDeviceGetCount"}, m);
  resolve(a.lib, a.deviceGet, {"cuDeviceGet"}, m);
  resolve(a.lib, a.deviceGetName, {"cuDeviceGetName"}, m);
  resolve(a.lib, a.deviceGetAttribute, {"cuDeviceGetAttribute"}, m);
  resolve(a.lib, a.devicePrimaryCtxRetain, {"cuDevicePrimaryCtxRetain"}, m);
  resolve(a.lib, a.devicePrimaryCtxRelease, {"cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease"}, m);
  resolve(a.lib, a.ctxSetCurrent, {"cuCtxSetCurrent"}, m);
  resolve(a.lib, a.ctxSynchronize, {"cuCtxSynchronize"}, m);
  resolve(a.lib, a.memGetInfo, {"cuMemGetInfo_v2"}, m);
  resolve(a.lib, a.memAlloc, {"cuMemAlloc_v2"}, m);
  resolve(a.lib, a.memFree, {"cuMemFree_v2"}, m);
  resolve(a.lib, a.memcpyHtoD, {"cuMemcpyHtoD_v2"}, m);
  resolve(a.lib, a.memcpyDtoH, {"cuMemcpyDtoH_v2"}, m);
  resolve(a.lib, a.memcpyDtoD, {"cuMemcpyDtoD_v2"}, m);
  resolve(a.lib, a.memcpyDtoDAsync, {"cuMemcpyDtoDAsync_v2"}, m);
  resolve(a.lib, a.memsetD8, {"cuMemsetD8_v2"}, m);
  resolve(a.lib, a.memsetD8Async, {"cuMemsetD8Async"}, m);
  resolve(a.lib, a.moduleLoadData, {"cuModuleLoadData"}, m);
  resolve(a.lib, a.moduleUnload, {"cuModuleUnload"}, m);
  resolve(a.lib, a.moduleGetFunction, {"cuModuleGetFunction"}, m);
  resolve(a.lib, a.funcSetAttribute, {"cuFuncSetAttribute"}, m);
  resolve(a.lib, a.funcGetAttribute, {"cuFuncGetAttribute"}, m);
  resolve(a.lib, a.launchKernel, {"cuLaunchKernel"}, m);
  resolve(a.lib, a.streamCreate, {"cuStreamCreate"}, m);
  resolve(a.lib, a.streamSynchronize, {"cuStreamSynchronize"}, m);
  resolve(a.lib, a.streamDestroy, {"cuStreamDestroy_v2", "cuStreamDestroy"}, m);
  resolve(a.lib, a.eventCreate, {"cuEventCreate"}, m);
  resolve(a.lib, a.eventRecord, {"cuEventRecord"}, m);
  resolve(a.lib, a.eventSynchronize, {"cuEventSynchronize"}, m);
  resolve(a.lib, a.eventElapsedTime, {"cuEventElapsedTime", "cuEventElapsedTime_v2"}, m);
  resolve(a.lib, a.eventDestroy, {"cuEventDestroy_v2", "cuEventDestroy"}, m);
  resolve(a.lib, a.getErrorName, {"cuGetErrorName"}, m);
  resolve(a.lib, a.getErrorString, {"cuGetErrorString"}, m);
  if (!m.empty()) return std::string(path) + " lacks: " + m;
  std::string optional;
  resolve(a.lib, a.tensorMapEncodeTiled, {"cuTensorMapEncodeTiled"}, optional);
  resolve(a.lib, a.launchKernelEx, {"cuLaunchKernelEx"}, optional);
  return "";
}

inline std::string errorName(const Api& a, CUresult r) {
  const char* s = nullptr;
  if (a.getErrorName && a.getErrorName(r, &s) == CUDA_SUCCESS && s) return s;
  return "CUDA error " + std::to_string(static_cast<int>(r));
}

// After these the context cannot be used again (the driver says so for each of them).
inline bool isSticky(CUresult r) {
  switch (r) {
    case CUDA_ERROR_ILLEGAL_ADDRESS:
    case CUDA_ERROR_LAUNCH_FAILED:
    case CUDA_ERROR_MISALIGNED_ADDRESS:
    case CUDA_ERROR_ILLEGAL_INSTRUCTION:
    case CUDA_ERROR_INVALID_ADDRESS_SPACE:
    case CUDA_ERROR_INVALID_PC:
    case CUDA_ERROR_HARDWARE_STACK_ERROR:
    case CUDA_ERROR_LAUNCH_TIMEOUT:
    case CUDA_ERROR_ECC_UNCORRECTABLE:
    case CUDA_ERROR_CONTEXT_IS_DESTROYED:
    case CUDA_ERROR_ASSERT:
      return true;
    default:
      return false;
  }
}

}  // namespace drv
