// A program with a region of interest for `septsim import lackey`
// (docs/lackey-import.md, "Phase markers"): it writes one word in each page
// of a 256 KiB array (its start-up), then, between two phase markers, reads
// one word per page four times (the measured region), then prints a line
// that is not a septsim marker.
#include <valgrind/valgrind.h>

#define PAGES 64
#define WORDS_PER_PAGE 512  // 4096 / sizeof(long)

static volatile long a[PAGES * WORDS_PER_PAGE];

int main(void) {
  for (int p = 0; p < PAGES; ++p) a[p * WORDS_PER_PAGE] = p;
  VALGRIND_PRINTF("septsim: phase begin measured\n");
  long sum = 0;
  for (int round = 0; round < 4; ++round)
    for (int p = 0; p < PAGES; ++p) sum += a[p * WORDS_PER_PAGE];
  VALGRIND_PRINTF("septsim: phase end measured\n");
  VALGRIND_PRINTF("sum %ld\n", sum);
  return 0;
}
