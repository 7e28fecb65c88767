/*
 * Stub bcryptprimitives.dll for Wine 8, which lacks ProcessPrng. Go 1.22 and
 * later call bcryptprimitives!ProcessPrng for every random byte (crypto/rand,
 * map seeds) and die at start-up without it. ProcessPrng fills the buffer
 * from RtlGenRandom (advapi32!SystemFunction036), which Wine implements.
 * Built by setup.sh with mingw-w64 and copied into the prefix's system32.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* ProcessPrng always succeeds on Windows; here it reports FALSE only if
 * RtlGenRandom fails. */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
    (void)inst; (void)reason; (void)reserved;
    return TRUE;
}
