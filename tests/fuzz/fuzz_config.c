/* libFuzzer target: the config parser (config_load_buf). Every input must be either rejected with
 * at least one "NAME:LINE: message" error, or accepted; an accepted config must print to text that
 * parses again to the very same text (the round trip `prelockd -t --print` promises). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

struct errs {
	unsigned n;
};

static void on_error(void *userdata, const char *message)
{
	struct errs *e = userdata;
	/* Every message is "NAME:LINE: ..." with a line number >= 1, or names the buffer. */
	if (strncmp(message, "f:", 2) != 0 && strncmp(message, "printed:", 8) != 0)
		abort();
	e->n++;
}

static char *print(const struct config *c, size_t *len)
{
	char *b = NULL;
	FILE *f = open_memstream(&b, len);
	if (!f)
		abort();
	config_print(f, c);
	fclose(f);
	return b;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct config c, d;
	struct errs e = { 0 };
	int r = config_load_buf("f", (const char *)data, size, &c, on_error, &e);

	if (r == -ENOMEM)
		return 0;
	if (r != 0) {
		/* Rejected: said why at least once, and left nothing allocated behind. */
		if (r != -EINVAL || e.n == 0)
			abort();
		return 0;
	}
	if (e.n != 0)
		abort();
	size_t n1, n2;
	char *b1 = print(&c, &n1);
	struct errs e2 = { 0 };
	if (config_load_buf("printed", b1, n1, &d, on_error, &e2) != 0)
		abort(); /* what we print, we must read back */
	char *b2 = print(&d, &n2);
	if (n1 != n2 || memcmp(b1, b2, n1) != 0)
		abort();
	free(b1);
	free(b2);
	config_free(&d);
	config_free(&c);
	return 0;
}
