// ember's C++ API in one include: load a model (Llm), generate with a Session, sampling and stop
// parameters, hooks, errors. The C API is ember/ember.h.
#pragma once

#include "ember/error.h"
#include "ember/hooks.h"
#include "ember/llm.h"
#include "ember/sampling.h"
#include "ember/session.h"
