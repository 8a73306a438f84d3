// The MSL prelude: it maps the shared helpers' macros (gpukern.Helpers)
// onto Metal Shading Language, float only (Metal has no double).
#include <metal_stdlib>
using namespace metal;
#define GLOBAL device
#define DEVFN static inline
#define I64 long
#define T float
#define ACC float
#define IDXOUT float
