/* ak_cpu.h - which vector instructions this process may use (the CPU has them and the kernel saves
 * their registers). The scanner's byte-set searches pick their code by these; elsewhere they are 0. */
#ifndef AK_CPU_H
#define AK_CPU_H

int ak_cpu_avx2(void);
int ak_cpu_ssse3(void);

#endif
