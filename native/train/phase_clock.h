// Adds the wall time between marks to the phases of a step (what the bench's breakdown shows);
// on CPU every ATen op has finished when it returns, so the time between marks is the part's time.
#pragma once

#include <chrono>

#include "train/trainer.h"

namespace u2pl::train {

class PhaseClock {
 public:
  explicit PhaseClock(StepPhases& phases) : phases_(phases), last_(std::chrono::steady_clock::now()) {}
  void Mark(double StepPhases::*phase) {
    const auto now = std::chrono::steady_clock::now();
    phases_.*phase += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }

 private:
  StepPhases& phases_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace u2pl::train
