/* libFuzzer's entry for one target: compiled once per target with
 * -DUM_FUZZ_ENTRY=um_fuzz_<name> (Makefile, `make fuzz`). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return UM_FUZZ_ENTRY(data, size); }
