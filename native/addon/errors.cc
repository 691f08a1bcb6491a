#include "addon/errors.h"

#include <c10/util/Exception.h>

namespace u2pl::addon {

std::string CurrentExceptionMessage(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown native error";
  }
}

}  // namespace u2pl::addon
