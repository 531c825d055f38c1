/* prelockd: keep the code of running programs in memory. main() only calls run(), which returns
 * one of the documented exit codes. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/capability.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <ini.h>

#include "daemon.h"
#include "log.h"
#include "state.h"
#include "status.h"

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,
	EXIT_USAGE = 64,    /* EX_USAGE */
	EXIT_NOPERM = 77,   /* EX_NOPERM: capability or resource limit */
	EXIT_CONFIG = 78,   /* EX_CONFIG */
};

struct options {
	const char *config;
	bool config_given, dry_run, json, test_config, print, reset_state, status, version, help;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: prelockd [OPTION]...\n"
		"Keep the code of running programs resident in memory (mlock).\n\n"
		"  -c, --config FILE   config file (default: %s)\n"
		"  -n, --dry-run       scan once, print the lock plan, lock nothing, exit\n"
		"      --json          with --dry-run or --status: machine-readable output\n"
		"  -t, --test-config   check the config, print \"configuration OK\" or every error\n"
		"      --print         with -t: print every setting in effect, defaults included,\n"
		"                      as a config file prelockd reads back\n"
		"  -r, --reset-state   delete the saved state file, exit\n"
		"  -s, --status        print what the running daemon has locked\n"
		"  -V, --version       print the version\n"
		"  -h, --help          print this help\n\n"
		"Without options it runs in the foreground until SIGTERM; SIGHUP reloads the config,\n"
		"SIGUSR1 rescans now. Exit codes: 0 ok, 1 failure, 64 usage, 77 privilege or\n"
		"resource limit, 78 config error. See prelockd(8) and prelockd.conf(5).\n",
		CONFIG_DEFAULT_PATH);
}

static int parse_args(int argc, char **argv, struct options *o)
{
	enum { OPT_JSON = 0x100, OPT_PRINT };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "test-config", no_argument, NULL, 't' },
		{ "print", no_argument, NULL, OPT_PRINT },
		{ "reset-state", no_argument, NULL, 'r' },
		{ "status", no_argument, NULL, 's' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	*o = (struct options){ .config = CONFIG_DEFAULT_PATH };
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:ntrsVh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			o->config_given = true;
			break;
		case 'n': o->dry_run = true; break;
		case OPT_JSON: o->json = true; break;
		case 't': o->test_config = true; break;
		case OPT_PRINT: o->print = true; break;
		case 'r': o->reset_state = true; break;
		case 's': o->status = true; break;
		case 'V': o->version = true; break;
		case 'h': o->help = true; break;
		case ':':
			fprintf(stderr, "prelockd: option '%s' needs an argument\n", argv[optind - 1]);
			return -EINVAL;
		default:
			if (optopt)
				fprintf(stderr, "prelockd: unknown option '-%c'\n", optopt);
			else
				fprintf(stderr, "prelockd: unknown option '%s'\n", argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "prelockd: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	int modes = o->dry_run + o->test_config + o->reset_state + o->status;
	if (modes > 1) {
		fprintf(stderr, "prelockd: --dry-run, --test-config, --reset-state and --status "
				"exclude each other\n");
		return -EINVAL;
	}
	if (o->json && !o->dry_run && !o->status) {
		fprintf(stderr, "prelockd: --json goes with --dry-run or --status\n");
		return -EINVAL;
	}
	if (o->print && !o->test_config) {
		fprintf(stderr, "prelockd: --print goes with --test-config\n");
		return -EINVAL;
	}
	return 0;
}

/* At err priority in the journal too: under systemd a failed start must say why in
 * `journalctl -p err`, as a failed reload does. */
static void print_config_error(void *userdata, const char *message)
{
	(void)userdata;
	log_line(LOG_ERR, message);
}

/* --status and --reset-state are wanted most right after a reload failed on a broken config.
 * They still use the path the file names (its last absolute one, or "" to turn the file off),
 * else the default: inih reads the syntax, and nothing but these two keys is taken from it. */
static int fallback_path_handler(void *userdata, const char *section, const char *name,
				 const char *value)
{
	struct config *cfg = userdata;
	char **field = NULL;

	if (strcmp(section, "daemon") != 0)
		return 1;
	if (strcmp(name, "state_file") == 0)
		field = &cfg->state_file;
	else if (strcmp(name, "status_file") == 0)
		field = &cfg->status_file;
	if (field && (*value == '\0' || *value == '/')) {
		char *copy = strdup(value);
		if (copy) {
			free(*field);
			*field = copy;
		}
	}
	return 1;
}

static int config_load_paths(const char *path, struct config *cfg)
{
	int r = config_init_defaults(cfg);
	if (r < 0)
		return r;
	(void)ini_parse(path, fallback_path_handler, cfg);
	return 0;
}

/* Whether a daemon runs with this status file: the pid the file names is alive and is a
 * prelockd (its command line names one; under valgrind the program is an argument). A stale file
 * from a daemon that stopped names a dead pid or another program. The status file appears after
 * the first pass: a daemon still in its first pass is not seen. */
static pid_t running_daemon(const char *status_file)
{
	char buf[4096], path[64]; /* a command line under valgrind is long: its options come first */
	int pid = 0;

	if (!status_file || !*status_file)
		return 0;
	_cleanup_close_ int fd = open(status_file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	const char *p = strstr(buf, "\"pid\": ");
	if (!p || sscanf(p, "\"pid\": %d", &pid) != 1 || pid <= 0 || pid == getpid())
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	_cleanup_close_ int cfd = open(path, O_RDONLY | O_CLOEXEC);
	if (cfd < 0)
		return 0;
	n = read(cfd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	buf[n] = '\0';
	return strstr(buf, "prelockd") ? (pid_t)pid : 0;
}

static int reset_state(const struct config *cfg)
{
	pid_t pid = running_daemon(cfg->status_file);
	if (pid > 0) {
		log_error("a daemon runs (pid %d, per %s), and it saves its state again when it stops: "
			  "stop it first (systemctl stop prelockd), then run prelockd --reset-state",
			  (int)pid, cfg->status_file);
		return EXIT_FAIL;
	}
	int r = state_reset(cfg->state_file);
	if (r < 0) {
		log_error("cannot delete %s: %s", cfg->state_file, strerror(-r));
		return EXIT_FAIL;
	}
	if (!*cfg->state_file)
		printf("no state file configured (state_file is empty)\n");
	else
		printf("state file %s removed\n", cfg->state_file);
	return EXIT_OK;
}

static bool have_cap(int cap)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { 0 };
	if (syscall(SYS_capget, &h, data) < 0)
		return false;
	return (data[cap / 32].effective >> (cap % 32)) & 1u;
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_debug("cannot raise RLIMIT_NOFILE, ignoring");
	}
}

/* Without CAP_IPC_LOCK, RLIMIT_MEMLOCK caps what can be locked, including (after
 * mlockall(MCL_FUTURE)) every page of our own heap and stack. Say exactly what to change. */
static int check_lock_privilege(const struct daemon *d)
{
	struct rlimit rl;
	char need[32];
	const uint64_t self_headroom = 64ull << 20;

	if (have_cap(CAP_IPC_LOCK))
		return 0;
	if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return 0;
	uint64_t want = d->ls.budget_bytes + self_headroom;
	if ((uint64_t)rl.rlim_cur >= want)
		return 0;
	log_error("cannot lock memory: CAP_IPC_LOCK is missing and RLIMIT_MEMLOCK is %llu KiB, "
		"but the budget needs %s plus room for the daemon itself.\n"
		"  Run as root, or grant CAP_IPC_LOCK (AmbientCapabilities=CAP_IPC_LOCK in the unit,\n"
		"  or setpriv --inh-caps +ipc_lock --ambient-caps +ipc_lock), or raise the limit to at\n"
		"  least %llu KiB (LimitMEMLOCK=%lluK in the unit; ulimit -l %llu in a shell).\n",
		(unsigned long long)rl.rlim_cur / 1024, format_bytes(need, sizeof(need), d->ls.budget_bytes),
		(unsigned long long)want / 1024, (unsigned long long)want / 1024,
		(unsigned long long)want / 1024);
	return -EPERM;
}

/* Once every page is locked, memory free()d inside the heap never leaves it: madvise(DONTNEED)
 * refuses locked pages, so only the top of the heap can shrink. Blocks of 32 KiB and more (the
 * read buffers, the file table, each pass's process and candidate arrays) get mappings of their
 * own, which free() unmaps and realloc() moves with mremap(), instead of leaving holes; and the
 * top is given back from 64 KiB on. Here the daemon's RssAnon went from 1084 to about 960 KiB
 * on the cost benchmark's 400 processes. (Fixed values also stop glibc from raising the mmap
 * threshold as blocks are freed.) */
static void malloc_for_locked_heap(void)
{
	(void)mallopt(M_MMAP_THRESHOLD, 32 * 1024);
	(void)mallopt(M_TRIM_THRESHOLD, 64 * 1024);
	(void)mallopt(M_TOP_PAD, 0);
}

static int lock_self(void)
{
	malloc_for_locked_heap();
	if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == 0)
		return 0;
	int r = -errno;
	log_error("mlockall(MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT) failed: %s.\n"
		"  Grant CAP_IPC_LOCK (run as root, or AmbientCapabilities=CAP_IPC_LOCK in the unit),\n"
		"  or raise RLIMIT_MEMLOCK (LimitMEMLOCK=infinity in the unit; ulimit -l unlimited).\n",
		strerror(-r));
	return r;
}

/* Loads the config: the defaults when the default file is missing; for --status and
 * --reset-state, the path a broken file still names. Returns 0 or an exit code. */
static int load_config(const struct options *o, struct config *cfg)
{
	int r;
	if (!o->config_given && access(o->config, F_OK) < 0 && errno == ENOENT) {
		/* Every key is optional: no config file at the default place means the defaults. */
		r = config_init_defaults(cfg);
		if (r == 0 && !o->test_config && !o->status && !o->reset_state)
			log_notice("%s not found, using the defaults", o->config);
	} else {
		r = config_load(o->config, cfg, print_config_error, NULL);
	}
	if (r < 0 && (o->status || o->reset_state) && config_load_paths(o->config, cfg) == 0) {
		log_warning("%s has errors (above): using the %s it names, %s", o->config,
			    o->status ? "status_file" : "state_file",
			    o->status ? cfg->status_file : cfg->state_file);
		r = 0;
	}
	if (r < 0)
		return r == -EINVAL || r == -ENOENT || r == -EACCES ? EXIT_CONFIG : EXIT_FAIL;
	return EXIT_OK;
}

/* -t: "configuration OK", or with --print every setting in effect. */
static int test_config(const struct options *o, const struct config *cfg)
{
	if (!o->print)
		printf("configuration OK\n");
	else if (access(o->config, F_OK) == 0)
		printf("; prelockd: %s, with the default of every key it does not set\n", o->config);
	else
		printf("; prelockd: the defaults (%s not found)\n", o->config);
	if (o->print)
		config_print(stdout, cfg);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "prelockd: cannot write to stdout: %s\n", strerror(errno));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* The daemon, or its --dry-run. Takes over *cfg. */
static int run_daemon(const struct options *o, struct config *cfg)
{
	struct daemon d;
	int r = daemon_init(&d, cfg, o->config, o->dry_run);
	if (r < 0) {
		daemon_free(&d);
		return EXIT_FAIL;
	}
	if (o->dry_run) {
		daemon_dry_run(&d, o->json);
		daemon_free(&d);
		return EXIT_OK;
	}
	if (check_lock_privilege(&d) < 0 || lock_self() < 0) {
		daemon_free(&d);
		return EXIT_NOPERM;
	}
	raise_nofile();
	r = daemon_run(&d);
	daemon_free(&d);
	return r < 0 ? EXIT_FAIL : EXIT_OK;
}

static int run(int argc, char **argv)
{
	struct options o;
	struct config cfg;
	int r;

	if (parse_args(argc, argv, &o) < 0) {
		fprintf(stderr, "Try 'prelockd --help'.\n");
		return EXIT_USAGE;
	}
	if (o.help) {
		usage(stdout);
		return EXIT_OK;
	}
	if (o.version) {
		printf("prelockd %s\n", PRELOCKD_VERSION);
		return EXIT_OK;
	}
	log_setup(LOG_LEVEL_INFO);
	r = load_config(&o, &cfg);
	if (r != EXIT_OK)
		return r;
	if (!o.test_config)
		log_set_level(cfg.log_level);
	if (!o.test_config && !o.reset_state && !o.status)
		return run_daemon(&o, &cfg);
	if (o.test_config)
		r = test_config(&o, &cfg);
	else if (o.reset_state)
		r = reset_state(&cfg);
	else
		r = status_print(cfg.status_file, o.json) < 0 ? EXIT_FAIL : EXIT_OK;
	config_free(&cfg);
	return r;
}

int main(int argc, char **argv)
{
	return run(argc, argv);
}
