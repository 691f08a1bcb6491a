// The values a PyTorch checkpoint (data.pkl) holds, as far as u2pl reads and writes them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace u2pl::io {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  enum class Kind { None, Bool, Int, Float, String, Bytes, Tensor, List, Tuple, Dict, Object };

  Kind kind = Kind::None;
  bool boolean = false;
  int64_t integer = 0;
  double number = 0;
  std::string text;                                   // String, Bytes, Object (its Python class name)
  at::Tensor tensor;                                  // Tensor (also a storage while unpickling)
  std::vector<ValuePtr> items;                        // List, Tuple, Object (constructor arguments)
  std::vector<std::pair<ValuePtr, ValuePtr>> entries; // Dict, in insertion order
  bool ordered = false;                               // Dict written as collections.OrderedDict

  static ValuePtr None() { return std::make_shared<Value>(); }
  static ValuePtr Bool(bool v) { auto p = std::make_shared<Value>(); p->kind = Kind::Bool; p->boolean = v; return p; }
  static ValuePtr Int(int64_t v) { auto p = std::make_shared<Value>(); p->kind = Kind::Int; p->integer = v; return p; }
  static ValuePtr Float(double v) { auto p = std::make_shared<Value>(); p->kind = Kind::Float; p->number = v; return p; }
  static ValuePtr String(std::string v) { auto p = std::make_shared<Value>(); p->kind = Kind::String; p->text = std::move(v); return p; }
  static ValuePtr Tensor(at::Tensor v) { auto p = std::make_shared<Value>(); p->kind = Kind::Tensor; p->tensor = std::move(v); return p; }
  static ValuePtr List(std::vector<ValuePtr> v = {}) { auto p = std::make_shared<Value>(); p->kind = Kind::List; p->items = std::move(v); return p; }
  static ValuePtr Tuple(std::vector<ValuePtr> v = {}) { auto p = std::make_shared<Value>(); p->kind = Kind::Tuple; p->items = std::move(v); return p; }
  static ValuePtr Dict(bool ordered = false) { auto p = std::make_shared<Value>(); p->kind = Kind::Dict; p->ordered = ordered; return p; }

  bool is(Kind k) const { return kind == k; }
  // Dict lookup by string key; nullptr when absent or not a dict.
  ValuePtr get(const std::string& key) const;
  void set(const std::string& key, ValuePtr value);
  const char* kind_name() const;
};

}  // namespace u2pl::io
