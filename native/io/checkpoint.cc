#include "io/checkpoint.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/pickle.h"

namespace u2pl::io {
namespace {

// Says what the file is when it cannot be a checkpoint: missing, a folder, empty, or not a zip
// (the legacy pickle format starts with the pickle protocol byte 0x80).
void CheckCheckpointFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw std::runtime_error(path + ": cannot open (" + std::strerror(errno) + ")");
  if (S_ISDIR(st.st_mode)) throw std::runtime_error(path + ": is a folder, not a checkpoint file");
  if (st.st_size == 0) throw std::runtime_error(path + ": is empty (0 bytes): not a checkpoint, perhaps a write that never happened");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open (" + std::strerror(errno) + ")");
  unsigned char magic[4] = {0, 0, 0, 0};
  in.read(reinterpret_cast<char*>(magic), 4);
  if (in.gcount() == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4) return;
  if (magic[0] == 0x80)
    throw std::runtime_error(path + ": a PyTorch checkpoint in the legacy (pre-1.6) format; re-save it with "
                                    "torch.save(torch.load(path), path) in any PyTorch >= 1.6");
  throw std::runtime_error(path + ": not a PyTorch checkpoint (a zip file written by torch.save >= 1.6 was expected)");
}

ValuePtr ReadZipCheckpoint(const std::string& path) {
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

// Flushes a file's data (or a folder's entries) to the disk. Without it a machine that goes down
// after the rename can come back with an empty or truncated checkpoint under the final name.
bool SyncToDisk(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

std::string Folder(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

ValuePtr ReadCheckpoint(const std::string& path) {
  CheckCheckpointFile(path);
  try {
    return ReadZipCheckpoint(path);
  } catch (const c10::Error& e) {
    // LibTorch's zip reader: a truncated file (no central directory) or a zip that torch.save did not write.
    const std::string what = e.what_without_backtrace();
    const bool truncated = what.find("central directory") != std::string::npos || what.find("failed reading") != std::string::npos;
    throw std::runtime_error(path + (truncated ? ": truncated or damaged (the zip archive is incomplete: " : ": a zip file, but not a PyTorch checkpoint (") +
                             what.substr(0, what.find('\n')) + ")");
  }
}

void WriteCheckpoint(const std::string& path, const ValuePtr& root) {
  std::vector<StorageRecord> storages;
  const std::string pkl = Pickle(root, storages);
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  int write_errno = 0;
  try {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error(path + ": cannot write (" + std::strerror(errno) + ")");
    // The writer must never see a failed write: it would throw, and its destructor, which finishes
    // the archive, would throw again during unwinding (std::terminate). So report success, remember
    // the error, and fail once the writer is done.
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t size) -> size_t {
      if (out) out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
      if (!out && write_errno == 0) write_errno = errno ? errno : EIO;
      return size;
    });
    writer.writeRecord("data.pkl", pkl.data(), pkl.size());
    const char order[] = "little";
    writer.writeRecord("byteorder", order, sizeof(order) - 1);
    for (const auto& s : storages)
      writer.writeRecord("data/" + s.key, s.tensor.data_ptr(), s.tensor.numel() * s.tensor.element_size());
    writer.writeEndOfFile();
    out.flush();
    if (!out && write_errno == 0) write_errno = errno ? errno : EIO;
    if (write_errno != 0)
      throw std::runtime_error(path + ": cannot write the checkpoint (" + std::strerror(write_errno) + "); the previous one, if any, is unchanged");
  } catch (const c10::Error&) {
    std::remove(tmp.c_str());  // never leave a partial file behind; the previous checkpoint stays intact
    throw std::runtime_error(path + ": cannot write the checkpoint (" + std::strerror(write_errno ? write_errno : EIO) +
                             "); the previous one, if any, is unchanged");
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  if (!SyncToDisk(tmp, O_RDONLY)) {
    const int e = errno;
    std::remove(tmp.c_str());
    throw std::runtime_error(path + ": cannot write the checkpoint to the disk (" + std::strerror(e) + "); the previous one, if any, is unchanged");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error(path + ": cannot rename the temporary file into place (" + std::strerror(errno) + ")");
  }
  SyncToDisk(Folder(path), O_RDONLY | O_DIRECTORY);  // the new name; some file systems cannot sync a folder
}

}  // namespace u2pl::io
