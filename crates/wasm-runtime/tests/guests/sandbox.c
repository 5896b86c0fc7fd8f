// WASI command probing the sandbox: argv[1] is a preopened directory holding existing.txt and
// a symlink "escape" pointing outside it. Prints one verdict per probe.
#include <stdio.h>
#include <string.h>
extern char **environ;

static void probe(const char *what, const char *path, const char *mode) {
    FILE *f = fopen(path, mode);
    if (f && mode[0] != 'r') f = fputs("x", f) >= 0 && fclose(f) == 0 ? f : NULL;
    else if (f) fclose(f);
    printf("%s %s\n", what, f ? "allowed" : "refused");
}

int main(int argc, char **argv) {
    char p[512];
    int n = 0;
    for (char **e = environ; e && *e; e++) n++;
    printf("env %d\n", n);
    if (argc < 2) return 1;
    snprintf(p, sizeof p, "%s/existing.txt", argv[1]); probe("read", p, "r");
    snprintf(p, sizeof p, "%s/existing.txt", argv[1]); probe("append", p, "a");
    snprintf(p, sizeof p, "%s/created.txt", argv[1]); probe("create", p, "w");
    snprintf(p, sizeof p, "%s/../outside.txt", argv[1]); probe("dotdot", p, "r");
    snprintf(p, sizeof p, "%s/escape", argv[1]); probe("symlink", p, "r");
    probe("unlisted", "/etc/hostname", "r");
    return 0;
}
