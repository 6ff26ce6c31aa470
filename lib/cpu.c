/* cpu.c - which vector instructions this process may use (ak_cpu.h). */
#include "ak_cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#if defined(__has_include)
#if __has_include(<sys/platform/x86.h>)
#include <sys/platform/x86.h>
#define AK_GLIBC_X86 1
#endif
#endif
#endif

/* glibc's loader already asked the CPU (and the kernel) what is usable; reading its answer costs
 * nothing. __builtin_cpu_supports would link libgcc's detection, which runs as a constructor in every
 * process, scanning or not, and its dozen CPUID instructions each trap to the hypervisor on a virtual
 * machine: a tenth of akctl's start-up there. */
int
ak_cpu_avx2(void)
{
#if defined(AK_GLIBC_X86)
	return CPU_FEATURE_ACTIVE(AVX2);
#elif defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2");
#else
	return 0;
#endif
}

int
ak_cpu_ssse3(void)
{
#if defined(AK_GLIBC_X86)
	return CPU_FEATURE_ACTIVE(SSSE3);
#elif defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
	return __builtin_cpu_supports("ssse3");
#else
	return 0;
#endif
}
