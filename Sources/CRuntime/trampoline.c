/* trampoline.c: the container's program is exec'ed from a tiny program in a sealed memfd, never
   from a copy of berth.

   The process that execs the container's program is a copy of berth until that execve. While
   the kernel loads the new program it still counts as berth: a program whose ELF interpreter is
   the image's own (PT_INTERP is looked up in the container's root), or an entrypoint of
   /proc/self/exe, or a script whose #! line names it, then runs with /proc/self/exe pointing at
   the host's berth binary, readable by the container, and writable once no berth process runs
   it any more (CVE-2019-5736). runc answered with a sealed copy of itself in a memfd; berth's
   last exec goes through a 109-byte static program of its own instead: the child execveat()s
   it from a sealed memfd, and it execve()s the container's program. Whatever the container
   finds through /proc/self/exe is then this sealed, public trampoline.

   The trampoline (x86-64, no libc, no interpreter):
       fcntl(3, F_SETFD, FD_CLOEXEC)            fd 3 is the error pipe: closed by a good exec;
                                                when it is not open, this is a re-entry (a
                                                script whose #! is /proc/self/exe): exit(127)
       execve(argv[0], &argv[1], envp)          argv[0] is the resolved path of the program
       write(3, {BERTH_STAGE_EXEC, -rc, -1}, 12) what the child would report itself
       exit(127)
   Its bytes are assembled from this listing (as + objcopy); they are written here by hand so
   that no build step has to make them. */
#include "internal.h"
#include <elf.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__x86_64__)
static const unsigned char trampoline_code[] = {
    0xb8, 0x48, 0x00, 0x00, 0x00,               /* mov eax, 72 (fcntl) */
    0xbf, 0x03, 0x00, 0x00, 0x00,               /* mov edi, 3 */
    0xbe, 0x02, 0x00, 0x00, 0x00,               /* mov esi, 2 (F_SETFD) */
    0xba, 0x01, 0x00, 0x00, 0x00,               /* mov edx, 1 (FD_CLOEXEC) */
    0x0f, 0x05,                                 /* syscall */
    0x85, 0xc0,                                 /* test eax, eax */
    0x75, 0x47,                                 /* jnz exit              fd 3 is not open */
    0x48, 0x8b, 0x0c, 0x24,                     /* mov rcx, [rsp]        argc */
    0x48, 0x8b, 0x7c, 0x24, 0x08,               /* mov rdi, [rsp+8]      argv[0] */
    0x48, 0x8d, 0x74, 0x24, 0x10,               /* lea rsi, [rsp+16]     &argv[1] */
    0x48, 0x8d, 0x54, 0xcc, 0x10,               /* lea rdx, [rsp+rcx*8+16] envp */
    0xb8, 0x3b, 0x00, 0x00, 0x00,               /* mov eax, 59 (execve) */
    0x0f, 0x05,                                 /* syscall */
    0xf7, 0xd8,                                 /* neg eax */
    0x48, 0x83, 0xec, 0x10,                     /* sub rsp, 16 */
    0xc7, 0x04, 0x24, 0x00, 0x00, 0x00, 0x00,   /* mov dword [rsp], STAGE (patched below) */
    0x89, 0x44, 0x24, 0x04,                     /* mov [rsp+4], eax */
    0xc7, 0x44, 0x24, 0x08, 0xff, 0xff, 0xff, 0xff, /* mov dword [rsp+8], -1 */
    0xb8, 0x01, 0x00, 0x00, 0x00,               /* mov eax, 1 (write) */
    0xbf, 0x03, 0x00, 0x00, 0x00,               /* mov edi, 3 */
    0x48, 0x89, 0xe6,                           /* mov rsi, rsp */
    0xba, 0x0c, 0x00, 0x00, 0x00,               /* mov edx, 12 */
    0x0f, 0x05,                                 /* syscall */
                                                /* exit: */
    0xb8, 0x3c, 0x00, 0x00, 0x00,               /* mov eax, 60 (exit) */
    0xbf, 0x7f, 0x00, 0x00, 0x00,               /* mov edi, 127 */
    0x0f, 0x05,                                 /* syscall */
};
enum { STAGE_OFFSET = 0x3d };
_Static_assert(sizeof(struct berth_failure) == 12, "the trampoline writes 12 bytes");

static struct __attribute__((packed)) {
    Elf64_Ehdr header;
    Elf64_Phdr load;
    unsigned char code[sizeof trampoline_code];
} image;

static int trampoline_fd = -1;

static void make_trampoline(void) {
    const Elf64_Addr base = 0x400000;
    memset(&image, 0, sizeof image);
    memcpy(image.header.e_ident, ELFMAG, SELFMAG);
    image.header.e_ident[EI_CLASS] = ELFCLASS64;
    image.header.e_ident[EI_DATA] = ELFDATA2LSB;
    image.header.e_ident[EI_VERSION] = EV_CURRENT;
    image.header.e_type = ET_EXEC;
    image.header.e_machine = EM_X86_64;
    image.header.e_version = EV_CURRENT;
    image.header.e_entry = base + offsetof(__typeof__(image), code);
    image.header.e_phoff = offsetof(__typeof__(image), load);
    image.header.e_ehsize = sizeof image.header;
    image.header.e_phentsize = sizeof image.load;
    image.header.e_phnum = 1;
    image.load.p_type = PT_LOAD;
    image.load.p_flags = PF_R | PF_X;
    image.load.p_vaddr = image.load.p_paddr = base;
    image.load.p_filesz = image.load.p_memsz = sizeof image;
    image.load.p_align = 0x1000;
    memcpy(image.code, trampoline_code, sizeof trampoline_code);
    int stage = BERTH_STAGE_EXEC;
    memcpy(image.code + STAGE_OFFSET, &stage, sizeof stage);

    int fd = memfd_create("berth-exec", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return;
    if (write(fd, &image, sizeof image) != (ssize_t)sizeof image ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
        close(fd);
        return;
    }
    trampoline_fd = fd;
}

int berth_trampoline_fd(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_trampoline);
    return trampoline_fd;
}
#else
int berth_trampoline_fd(void) { return -1; }
#endif
