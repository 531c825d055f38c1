/* libFuzzer target: the --status reader (status_print_text). The status file is the daemon's, but
 * an administrator's command reads it, and it lists names that users chose. Whatever the text, the
 * reader returns 0 or -EBADMSG (-ENOMEM aside), prints nothing when it refuses the text, and what
 * it prints is valid UTF-8 with no control character but the line ends. Also: escape_path() of
 * any bytes is valid UTF-8 and round-trips through unescape_path(). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "statusread.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void check_text(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\n') || c == 0x7f)
			abort();
		size_t k = utf8_char_len(s + i);
		if (!k || k > n - i)
			abort();
		i += k;
	}
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char *out = NULL;
	size_t outlen = 0;
	FILE *f = open_memstream(&out, &outlen);
	if (!f)
		return 0;
	int r = status_print_text((const char *)data, size, f);
	if (fclose(f) != 0) {
		free(out);
		return 0;
	}
	if (r != 0 && r != -EBADMSG && r != -ENOMEM)
		abort();
	if (r == -EBADMSG && outlen)
		abort(); /* refused: nothing printed */
	check_text(out, outlen);
	free(out);

	char *s = malloc(size + 1);
	if (s) {
		memcpy(s, data, size);
		s[size] = '\0';
		char *esc = escape_path(s);
		if (esc) {
			check_text(esc, strlen(esc));
			if (strchr(esc, '\n') || unescape_path(esc) < 0 || strcmp(esc, s) != 0)
				abort();
			free(esc);
		}
		free(s);
	}
	return 0;
}
