#include "io/value.h"

namespace u2pl::io {

ValuePtr Value::get(const std::string& key) const {
  if (kind != Kind::Dict) return nullptr;
  for (const auto& [k, v] : entries)
    if (k->kind == Kind::String && k->text == key) return v;
  return nullptr;
}

void Value::set(const std::string& key, ValuePtr value) {
  for (auto& [k, v] : entries)
    if (k->kind == Kind::String && k->text == key) {
      v = std::move(value);
      return;
    }
  entries.emplace_back(String(key), std::move(value));
}

const char* Value::kind_name() const {
  switch (kind) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::Tensor: return "tensor";
    case Kind::List: return "list";
    case Kind::Tuple: return "tuple";
    case Kind::Dict: return "dict";
    case Kind::Object: return "object";
  }
  return "?";
}

}  // namespace u2pl::io
