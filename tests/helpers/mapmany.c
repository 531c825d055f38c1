/* Test helper: maps each FILE whole, read+exec, as a program maps its libraries, and reads every
 * page of each (none with -n). Prints "ready N" (files mapped) and waits to be killed.
 *
 *   mapmany [-n] FILE...
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mapfile.h"

int main(int argc, char **argv)
{
	volatile unsigned char sink = 0;
	int touch = 1, first = 1, made = 0;

	if (argc > 1 && strcmp(argv[1], "-n") == 0) {
		touch = 0;
		first = 2;
	}
	for (int i = first; i < argc; i++) {
		size_t size;
		unsigned char *p = map_exec_file(argv[i], &size);
		if (!p) {
			perror(argv[i]);
			return 1;
		}
		if (touch)
			sink = (unsigned char)(sink + touch_pages(p, size));
		made++;
	}
	printf("ready %d\n", made);
	fflush(stdout);
	for (;;)
		pause();
}
