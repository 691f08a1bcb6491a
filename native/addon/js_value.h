// Conversion between checkpoint values (io::Value) and JS values.
#pragma once

#include <napi.h>

#include "io/value.h"

namespace u2pl::addon {

// Dicts become plain objects (keys as strings), lists and tuples arrays, tensors NativeTensors
// (copies), None null, opaque Python objects { __class__: name }.
Napi::Value ValueToJs(Napi::Env env, const io::ValuePtr& value);

// Objects become dicts, arrays lists, { data: TypedArray, shape } tensors (viewing JS memory:
// keep `value` alive while the result is used), integers int, other numbers float, bigint int.
io::ValuePtr ValueFromJs(const Napi::Value& value, const std::string& path);

}  // namespace u2pl::addon
