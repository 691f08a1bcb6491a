#include "io/pickle.h"

#include <cstring>
#include <stdexcept>
#include <unordered_map>

#include <ATen/ATen.h>

namespace u2pl::io {
namespace {

struct StorageType {
  const char* name;
  at::ScalarType dtype;
};

constexpr StorageType kStorageTypes[] = {
    {"FloatStorage", at::kFloat},   {"DoubleStorage", at::kDouble},     {"HalfStorage", at::kHalf},
    {"BFloat16Storage", at::kBFloat16}, {"LongStorage", at::kLong},     {"IntStorage", at::kInt},
    {"ShortStorage", at::kShort},   {"CharStorage", at::kChar},         {"ByteStorage", at::kByte},
    {"BoolStorage", at::kBool},     {"UntypedStorage", at::kByte},
};

ValuePtr MakeObject(std::string name, std::vector<ValuePtr> args = {}) {
  auto p = std::make_shared<Value>();
  p->kind = Value::Kind::Object;
  p->text = std::move(name);
  p->items = std::move(args);
  return p;
}

class Unpickler {
 public:
  Unpickler(const std::string& bytes, const StorageLoader& load, const std::string& source)
      : b_(bytes), load_(load), source_(source) {}

  ValuePtr Run() {
    while (true) {
      if (pos_ >= b_.size()) Fail("truncated pickle (no STOP)");
      const uint8_t op = Byte();
      switch (op) {
        case 0x80: Byte(); break;                // PROTO
        case 0x95: Read(8); break;               // FRAME (length is informational)
        case '.': return Pop();                  // STOP
        case '(': marks_.push_back(stack_.size()); break;
        case '0': Pop(); break;
        case '1': PopMark(); break;
        case '2': stack_.push_back(Top()); break;
        case '}': stack_.push_back(Value::Dict()); break;
        case ']': stack_.push_back(Value::List()); break;
        case ')': stack_.push_back(Value::Tuple()); break;
        case 0x8f: stack_.push_back(Value::List()); break;  // EMPTY_SET -> list
        case 't': stack_.push_back(Value::Tuple(PopMark())); break;
        case 0x85: { auto a = Pop(); stack_.push_back(Value::Tuple({a})); break; }
        case 0x86: { auto b = Pop(), a = Pop(); stack_.push_back(Value::Tuple({a, b})); break; }
        case 0x87: { auto c = Pop(), b = Pop(), a = Pop(); stack_.push_back(Value::Tuple({a, b, c})); break; }
        case 'l': stack_.push_back(Value::List(PopMark())); break;
        case 0x91: stack_.push_back(Value::List(PopMark())); break;  // FROZENSET
        case 'd': { auto items = PopMark(); auto d = Value::Dict(); SetItems(d, items); stack_.push_back(d); break; }
        case 'a': { auto v = Pop(); Top()->items.push_back(v); break; }
        case 'e': case 0x90: { auto items = PopMark(); auto& t = Top()->items; t.insert(t.end(), items.begin(), items.end()); break; }
        case 's': { auto v = Pop(), k = Pop(); SetItems(Top(), {k, v}); break; }
        case 'u': { auto items = PopMark(); SetItems(Top(), items); break; }
        case 'q': memo_[Byte()] = Top(); break;
        case 'r': memo_[U32()] = Top(); break;
        case 0x94: memo_[memo_.size()] = Top(); break;
        case 'h': stack_.push_back(Memo(Byte())); break;
        case 'j': stack_.push_back(Memo(U32())); break;
        case 'p': memo_[std::stoull(Line())] = Top(); break;
        case 'g': stack_.push_back(Memo(std::stoull(Line()))); break;
        case 'J': stack_.push_back(Value::Int(static_cast<int32_t>(U32()))); break;
        case 'K': stack_.push_back(Value::Int(Byte())); break;
        case 'M': { uint16_t v; std::memcpy(&v, Read(2), 2); stack_.push_back(Value::Int(v)); break; }
        case 0x8a: stack_.push_back(Value::Int(Long(Byte()))); break;
        case 0x8b: stack_.push_back(Value::Int(Long(U32()))); break;
        case 'I': { std::string l = Line(); stack_.push_back(l == "01" ? Value::Bool(true) : l == "00" ? Value::Bool(false) : Value::Int(std::stoll(l))); break; }
        case 'G': {
          uint8_t raw[8];
          std::memcpy(raw, Read(8), 8);
          uint8_t le[8];
          for (int i = 0; i < 8; ++i) le[i] = raw[7 - i];
          double v;
          std::memcpy(&v, le, 8);
          stack_.push_back(Value::Float(v));
          break;
        }
        case 'N': stack_.push_back(Value::None()); break;
        case 0x88: stack_.push_back(Value::Bool(true)); break;
        case 0x89: stack_.push_back(Value::Bool(false)); break;
        case 'X': { uint32_t n = U32(); stack_.push_back(Value::String(std::string(Read(n), n))); break; }
        case 0x8c: { uint8_t n = Byte(); stack_.push_back(Value::String(std::string(Read(n), n))); break; }
        case 0x8d: { uint64_t n = U64(); stack_.push_back(Value::String(std::string(Read(n), n))); break; }
        case 'T': { uint32_t n = U32(); stack_.push_back(Bytes(std::string(Read(n), n))); break; }
        case 'U': { uint8_t n = Byte(); stack_.push_back(Bytes(std::string(Read(n), n))); break; }
        case 'B': { uint32_t n = U32(); stack_.push_back(Bytes(std::string(Read(n), n))); break; }
        case 'C': { uint8_t n = Byte(); stack_.push_back(Bytes(std::string(Read(n), n))); break; }
        case 0x8e: { uint64_t n = U64(); stack_.push_back(Bytes(std::string(Read(n), n))); break; }
        case 'c': { std::string module = Line(); std::string name = Line(); stack_.push_back(MakeObject(module + "." + name)); break; }
        case 0x93: { auto name = Pop(), module = Pop(); stack_.push_back(MakeObject(module->text + "." + name->text)); break; }
        case 'R': { auto args = Pop(), callable = Pop(); stack_.push_back(Reduce(callable->text, args->items)); break; }
        case 0x81: { auto args = Pop(), cls = Pop(); stack_.push_back(Reduce(cls->text, args->items)); break; }
        case 'b': Pop(); break;  // BUILD: object state (e.g. a state dict's _metadata) is not needed
        case 'Q': stack_.push_back(PersistentLoad(Pop())); break;
        default: Fail("unsupported pickle opcode 0x" + Hex(op));
      }
    }
  }

 private:
  [[noreturn]] void Fail(const std::string& what) const {
    throw std::runtime_error(source_ + ": " + what + " at byte " + std::to_string(pos_));
  }
  static std::string Hex(uint8_t v) {
    const char* d = "0123456789abcdef";
    return {d[v >> 4], d[v & 15]};
  }
  const char* Read(size_t n) {
    if (pos_ + n > b_.size()) Fail("truncated pickle");
    const char* p = b_.data() + pos_;
    pos_ += n;
    return p;
  }
  uint8_t Byte() { return static_cast<uint8_t>(*Read(1)); }
  uint32_t U32() { uint32_t v; std::memcpy(&v, Read(4), 4); return v; }
  uint64_t U64() { uint64_t v; std::memcpy(&v, Read(8), 8); return v; }
  int64_t Long(size_t n) {
    if (n > 8) Fail("integer wider than 64 bits");
    if (n == 0) return 0;
    const auto* p = reinterpret_cast<const uint8_t*>(Read(n));
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
    if (n < 8 && (p[n - 1] & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
    return static_cast<int64_t>(v);
  }
  std::string Line() {
    size_t end = b_.find('\n', pos_);
    if (end == std::string::npos) Fail("unterminated text field");
    std::string s = b_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }
  static ValuePtr Bytes(std::string s) {
    auto p = Value::String(std::move(s));
    p->kind = Value::Kind::Bytes;
    return p;
  }
  ValuePtr Pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) Fail("pickle stack underflow");
    ValuePtr v = stack_.back();
    stack_.pop_back();
    return v;
  }
  ValuePtr& Top() {
    if (stack_.empty()) Fail("pickle stack underflow");
    return stack_.back();
  }
  std::vector<ValuePtr> PopMark() {
    if (marks_.empty()) Fail("pickle MARK missing");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> items(stack_.begin() + m, stack_.end());
    stack_.resize(m);
    return items;
  }
  ValuePtr Memo(uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) Fail("pickle memo key " + std::to_string(key) + " missing");
    return it->second;
  }
  void SetItems(const ValuePtr& dict, const std::vector<ValuePtr>& items) {
    if (dict->kind != Value::Kind::Dict) Fail("SETITEM on a " + std::string(dict->kind_name()));
    if (items.size() % 2) Fail("odd number of dict items");
    for (size_t i = 0; i < items.size(); i += 2) {
      bool replaced = false;
      if (items[i]->kind == Value::Kind::String)
        for (auto& [k, v] : dict->entries)
          if (k->kind == Value::Kind::String && k->text == items[i]->text) { v = items[i + 1]; replaced = true; }
      if (!replaced) dict->entries.emplace_back(items[i], items[i + 1]);
    }
  }
  static std::vector<int64_t> Ints(const ValuePtr& tuple) {
    std::vector<int64_t> out;
    for (const auto& v : tuple->items) out.push_back(v->integer);
    return out;
  }

  ValuePtr Reduce(const std::string& callable, const std::vector<ValuePtr>& args) {
    if (callable == "collections.OrderedDict") {
      auto d = Value::Dict(true);
      if (!args.empty() && args[0]->kind == Value::Kind::List)
        for (const auto& pair : args[0]->items) SetItems(d, pair->items);
      return d;
    }
    if (callable == "torch._utils._rebuild_tensor_v2" || callable == "torch._utils._rebuild_tensor") {
      if (args.size() < 4 || args[0]->kind != Value::Kind::Object || !args[0]->tensor.defined())
        Fail(callable + " without a storage");
      const at::Tensor& storage = args[0]->tensor;
      const int64_t offset = args[1]->integer;
      const auto sizes = Ints(args[2]);
      const auto strides = Ints(args[3]);
      int64_t last = offset;
      for (size_t i = 0; i < sizes.size(); ++i)
        if (sizes[i] == 0) last = -1;
      if (last >= 0)
        for (size_t i = 0; i < sizes.size(); ++i) last += (sizes[i] - 1) * strides[i];
      if (last >= storage.numel()) Fail("tensor view reaches past its storage");
      return Value::Tensor(storage.as_strided(sizes, strides, offset));
    }
    if (callable == "torch._utils._rebuild_parameter" || callable == "torch._utils._rebuild_parameter_with_state") {
      if (args.empty()) Fail(callable + " without data");
      return args[0];
    }
    if (callable == "builtins.set" || callable == "__builtin__.set" || callable == "builtins.frozenset")
      return Value::List(args.empty() ? std::vector<ValuePtr>{} : args[0]->items);
    return MakeObject(callable, args);  // kept opaque: readable as long as nobody needs its value
  }

  ValuePtr PersistentLoad(const ValuePtr& pid) {
    const auto& t = pid->items;
    if (pid->kind != Value::Kind::Tuple || t.size() < 5 || t[0]->text != "storage")
      Fail("unsupported persistent id (expected ('storage', type, key, location, numel))");
    std::string type = t[1]->text;
    type = type.substr(type.rfind('.') + 1);
    at::ScalarType dtype = at::ScalarType::Undefined;
    for (const auto& st : kStorageTypes)
      if (type == st.name) dtype = st.dtype;
    if (dtype == at::ScalarType::Undefined) Fail("unsupported storage type " + t[1]->text);
    const std::string key = t[2]->text;
    auto it = storages_.find(key);
    if (it == storages_.end()) it = storages_.emplace(key, load_(key, dtype, t[4]->integer)).first;
    auto obj = MakeObject("storage");
    obj->tensor = it->second;
    return obj;
  }

  const std::string& b_;
  const StorageLoader& load_;
  std::string source_;
  size_t pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValuePtr> memo_;
  std::unordered_map<std::string, at::Tensor> storages_;
};

class Pickler {
 public:
  explicit Pickler(std::vector<StorageRecord>& storages) : storages_(storages) {}

  std::string Run(const ValuePtr& value) {
    out_ += "\x80\x02";
    Write(value);
    out_ += '.';
    return std::move(out_);
  }

 private:
  void Global(const char* module, const std::string& name) {
    out_ += 'c';
    out_ += module;
    out_ += '\n';
    out_ += name;
    out_ += '\n';
  }
  void U32(uint32_t v) { out_.append(reinterpret_cast<const char*>(&v), 4); }
  void Int(int64_t v) {
    if (v >= 0 && v < 256) {
      out_ += 'K';
      out_ += static_cast<char>(v);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      out_ += 'J';
      U32(static_cast<uint32_t>(static_cast<int32_t>(v)));
    } else {
      out_ += '\x8a';
      out_ += '\x08';
      out_.append(reinterpret_cast<const char*>(&v), 8);
    }
  }
  void Str(const std::string& s) {
    out_ += 'X';
    U32(static_cast<uint32_t>(s.size()));
    out_ += s;
  }
  void IntTuple(at::IntArrayRef values) {
    out_ += '(';
    for (int64_t v : values) Int(v);
    out_ += 't';
  }
  void EmptyOrderedDict() {
    Global("collections", "OrderedDict");
    out_ += ")R";
  }

  void WriteTensor(const at::Tensor& input) {
    at::Tensor t = input.detach().to(at::kCPU).contiguous();
    // Each tensor gets a storage of exactly its own bytes (views are written as copies).
    if (t.storage_offset() != 0 || t.storage().nbytes() != static_cast<size_t>(t.numel()) * t.element_size())
      t = t.clone();
    const char* storage_name = nullptr;
    for (const auto& st : kStorageTypes)
      if (st.dtype == t.scalar_type() && std::strcmp(st.name, "UntypedStorage") != 0) { storage_name = st.name; break; }
    if (!storage_name) throw std::invalid_argument(std::string("cannot save a tensor of dtype ") + c10::toString(t.scalar_type()));
    const std::string key = std::to_string(storages_.size());
    storages_.push_back({key, t});

    Global("torch._utils", "_rebuild_tensor_v2");
    out_ += '(';
    out_ += '(';
    Str("storage");
    Global("torch", storage_name);
    Str(key);
    Str("cpu");
    Int(t.numel());
    out_ += "tQ";  // TUPLE, BINPERSID
    Int(0);
    IntTuple(t.sizes());
    IntTuple(t.strides());
    out_ += '\x89';  // requires_grad False
    EmptyOrderedDict();
    out_ += "tR";
  }

  void Write(const ValuePtr& v) {
    switch (v->kind) {
      case Value::Kind::None: out_ += 'N'; break;
      case Value::Kind::Bool: out_ += v->boolean ? '\x88' : '\x89'; break;
      case Value::Kind::Int: Int(v->integer); break;
      case Value::Kind::Float: {
        out_ += 'G';
        uint8_t raw[8];
        std::memcpy(raw, &v->number, 8);
        for (int i = 7; i >= 0; --i) out_ += static_cast<char>(raw[i]);
        break;
      }
      case Value::Kind::String: Str(v->text); break;
      case Value::Kind::Bytes:
        out_ += 'B';
        U32(static_cast<uint32_t>(v->text.size()));
        out_ += v->text;
        break;
      case Value::Kind::Tensor: WriteTensor(v->tensor); break;
      case Value::Kind::List:
        out_ += "](";
        for (const auto& item : v->items) Write(item);
        out_ += 'e';
        break;
      case Value::Kind::Tuple:
        out_ += '(';
        for (const auto& item : v->items) Write(item);
        out_ += 't';
        break;
      case Value::Kind::Dict:
        if (v->ordered) EmptyOrderedDict();
        else out_ += '}';
        out_ += '(';
        for (const auto& [key, value] : v->entries) {
          Write(key);
          Write(value);
        }
        out_ += 'u';
        break;
      case Value::Kind::Object: throw std::invalid_argument("cannot save an opaque Python object (" + v->text + ")");
    }
  }

  std::vector<StorageRecord>& storages_;
  std::string out_;
};

}  // namespace

ValuePtr Unpickle(const std::string& bytes, const StorageLoader& load_storage, const std::string& source) {
  return Unpickler(bytes, load_storage, source).Run();
}

std::string Pickle(const ValuePtr& value, std::vector<StorageRecord>& storages) {
  return Pickler(storages).Run(value);
}

}  // namespace u2pl::io
