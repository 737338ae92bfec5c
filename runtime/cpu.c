/*
 * cpu.c — does this CPU have the features a build was compiled for?
 *
 * A compiled program calls gmrt_cpu_check first (the generated main.c), so
 * a build for a CPU it is not running on names the missing feature instead
 * of dying on an illegal instruction.  Feature names are LLVM's (the
 * target's `features`, compiler/targets/); x86 asks the compiler's CPUID
 * table, AArch64 and RISC-V Linux the kernel's hardware capability bits.  A
 * name this file does not know is taken as present.
 */
#include "gmrt.h"

#include <stdio.h>
#include <string.h>

#if (defined(__aarch64__) || defined(__riscv)) && defined(__linux__)
#include <sys/auxv.h>
#endif

/* 1 if this CPU has feature name, 0 if not, -1 if the name is unknown. */
static int cpu_has(const char *name)
{
    (void)name; /* unused where there is nothing to ask (wasm32: the engine checks
                 * SIMD128 when it compiles the module) */
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    __builtin_cpu_init();
    /* __builtin_cpu_supports takes literals only: one line per name */
#define X86(s) if (strcmp(name, s) == 0) return __builtin_cpu_supports(s) != 0
    X86("sse2"); X86("avx"); X86("avx2"); X86("fma"); X86("f16c"); X86("bmi2");
    X86("avx512f"); X86("avx512bw"); X86("avx512vl"); X86("avx512dq");
    X86("avx512vnni"); X86("avx512bf16"); X86("avx512vbmi");
#undef X86
#elif defined(__aarch64__) && defined(__linux__)
    static const struct {
        const char *name;
        int hwcap2;
        unsigned long bit;
    } caps[] = {
        {"neon", 0, 1ul << 1},     /* HWCAP_ASIMD */
        {"dotprod", 0, 1ul << 20}, /* HWCAP_ASIMDDP */
        {"i8mm", 1, 1ul << 13},    /* HWCAP2_I8MM */
        {"bf16", 1, 1ul << 14},    /* HWCAP2_BF16 */
    };
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
        if (strcmp(name, caps[i].name) == 0)
            return (getauxval(caps[i].hwcap2 ? AT_HWCAP2 : AT_HWCAP) & caps[i].bit) != 0;
#elif defined(__riscv) && defined(__linux__)
    /* Linux gives the single-letter extensions as AT_HWCAP bits, 'a' at bit 0
     * ("v": RVV 1.0) */
    if (name[0] >= 'a' && name[0] <= 'z' && name[1] == '\0')
        return (int)((getauxval(AT_HWCAP) >> (name[0] - 'a')) & 1);
#endif
    return -1;
}

bool gmrt_cpu_missing(const char *features, char *miss, size_t len)
{
    for (const char *p = features ? features : ""; *p;) {
        size_t n = strcspn(p, ",");
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)n, p);
        if (n > 0 && n < sizeof name && cpu_has(name) == 0) {
            snprintf(miss, len, "%s", name);
            return true;
        }
        p += n + (p[n] == ',');
    }
    return false;
}

bool gmrt_cpu_check(const char *features, const char *target)
{
    char miss[64];
    if (!gmrt_cpu_missing(features, miss, sizeof miss))
        return true;
    fprintf(stderr,
            "error: this program was built for target %s, which needs the CPU feature "
            "+%s; this CPU lacks it (rebuild with a target `gemmac targets` marks \"yes\" "
            "on this machine)\n", target, miss);
    return false;
}
