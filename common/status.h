// Errors as values at module edges. The types live in the client library's
// public header, so the library and the rest of tq share one Status.
#pragma once

#include "tq/status.h"  // IWYU pragma: export
