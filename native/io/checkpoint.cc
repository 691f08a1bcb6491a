#include "io/checkpoint.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <unistd.h>

#include "io/pickle.h"

namespace u2pl::io {
namespace {

bool IsZip(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open (" + std::strerror(errno) + ")");
  char magic[4] = {0, 0, 0, 0};
  in.read(magic, 4);
  return in.gcount() == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
}

}  // namespace

ValuePtr ReadCheckpoint(const std::string& path) {
  if (!IsZip(path))
    throw std::runtime_error(path + ": not a PyTorch zip checkpoint (torch.save >= 1.6). Files in the legacy format "
                                    "can be re-saved with torch.save(torch.load(path), path) in any PyTorch >= 1.6");
  caffe2::serialize::PyTorchStreamReader reader(path);
  if (reader.hasRecord("byteorder")) {
    auto [data, size] = reader.getRecord("byteorder");
    std::string order(static_cast<const char*>(data.get()), size);
    if (order != "little") throw std::runtime_error(path + ": byte order '" + order + "' is not supported");
  }
  if (!reader.hasRecord("data.pkl")) throw std::runtime_error(path + ": no data.pkl record (a TorchScript file?)");
  auto [pkl, pkl_size] = reader.getRecord("data.pkl");
  const std::string bytes(static_cast<const char*>(pkl.get()), pkl_size);
  StorageLoader load = [&](const std::string& key, at::ScalarType dtype, int64_t numel) {
    const std::string record = "data/" + key;
    if (!reader.hasRecord(record)) throw std::runtime_error(path + ": storage record " + record + " missing");
    auto [data, size] = reader.getRecord(record);
    const size_t element = c10::elementSize(dtype);
    if (size % element != 0 || static_cast<int64_t>(size / element) < numel)
      throw std::runtime_error(path + ": storage " + record + " has " + std::to_string(size) + " bytes, expected " +
                               std::to_string(numel * element));
    at::Tensor storage = at::empty({static_cast<int64_t>(size / element)}, at::TensorOptions().dtype(dtype));
    std::memcpy(storage.data_ptr(), data.get(), size);
    return storage;
  };
  return Unpickle(bytes, load, path);
}

void WriteCheckpoint(const std::string& path, const ValuePtr& root) {
  std::vector<StorageRecord> storages;
  const std::string pkl = Pickle(root, storages);
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  try {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error(path + ": cannot write (" + std::strerror(errno) + ")");
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t size) -> size_t {
      out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
      return out ? size : 0;
    });
    writer.writeRecord("data.pkl", pkl.data(), pkl.size());
    const char order[] = "little";
    writer.writeRecord("byteorder", order, sizeof(order) - 1);
    for (const auto& s : storages)
      writer.writeRecord("data/" + s.key, s.tensor.data_ptr(), s.tensor.numel() * s.tensor.element_size());
    writer.writeEndOfFile();
    out.flush();
    if (!out) throw std::runtime_error(path + ": write failed (disk full?)");
  } catch (...) {
    std::remove(tmp.c_str());  // never leave a partial file behind; the previous checkpoint stays intact
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error(path + ": cannot rename the temporary file into place (" + std::strerror(errno) + ")");
  }
}

}  // namespace u2pl::io
