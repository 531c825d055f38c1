#include "config.h"
#include <stdlib.h>
#include <string.h>
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
static void sink(void *u, const char *m) { (void)u; (void)m; }
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct config c;
	if (config_load_buf("f", (const char *)data, size, &c, sink, NULL) == 0) {
		char *b = NULL; size_t n = 0; FILE *f = open_memstream(&b, &n);
		config_dump(f, &c); fclose(f);
		struct config d;
		if (config_load_buf("dump", b, n, &d, sink, NULL) != 0) abort();   /* round trip must hold */
		char *b2 = NULL; size_t n2 = 0; f = open_memstream(&b2, &n2);
		config_dump(f, &d); fclose(f);
		if (n != n2 || memcmp(b, b2, n)) abort();
		free(b); free(b2); config_free(&d); config_free(&c);
	}
	return 0;
}
