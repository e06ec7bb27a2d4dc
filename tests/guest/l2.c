/* The L2 guest of tests/test_guest.py: the smallest VM the /dev/kvm API can run.
 *
 * Built by tests/realvirt.py with `gcc -static -O2 -o l2 l2.c` and put into the L1's
 * initramfs, where /init runs it after loading kvm_amd. It creates a VM
 * (KVM_CREATE_VM), gives it one page of memory at guest-physical 0x1000
 * (KVM_SET_USER_MEMORY_REGION), one vCPU (KVM_CREATE_VCPU) in real mode at 0x1000, and
 * runs it (KVM_RUN) until it halts. The guest's code copies a NUL-terminated message to
 * I/O port 0x3f8 one byte at a time (lodsb / out), then executes hlt. Every byte reaches
 * this program as a KVM_EXIT_IO, which prints it; KVM_EXIT_HLT ends the run.
 *
 * Output, one line each (the test reads them from the L1's console):
 *   XMLNEST-L2-API <KVM_GET_API_VERSION>
 *   XMLNEST-L2-OUT <the bytes the L2 wrote to port 0x3f8>
 *   XMLNEST-L2-EXIT hlt after <n> port writes
 * or, on any failure, XMLNEST-L2-FAIL <what>: <errno text> and exit status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define GUEST_BASE 0x1000
#define PORT 0x3f8

/* Real-mode code loaded at 0x1000 (cs = ds = 0):
 *   1000: ba f8 03   mov  dx, 0x3f8
 *   1003: be 0f 10   mov  si, 0x100f      ; the message, just after the code
 *   1006: ac         lodsb                ; al = [ds:si++]
 *   1007: 84 c0      test al, al
 *   1009: 74 03      jz   100e
 *   100b: ee         out  dx, al
 *   100c: eb f8      jmp  1006
 *   100e: f4         hlt
 *   100f: the message, NUL-terminated
 */
static const uint8_t code[] = {
    0xba, 0xf8, 0x03, 0xbe, 0x0f, 0x10, 0xac, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8, 0xf4,
};
static const char message[] = "hello from L2";

static int fail(const char *what) {
    printf("XMLNEST-L2-FAIL %s: %s\n", what, strerror(errno));
    fflush(stdout);
    return 1;
}

int main(void) {
    char out[256];
    size_t used = 0;
    unsigned writes = 0;

    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        return fail("open /dev/kvm");
    int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
    printf("XMLNEST-L2-API %d\n", api);
    fflush(stdout);
    if (api != KVM_API_VERSION) {
        errno = EINVAL;
        return fail("KVM_GET_API_VERSION");
    }
    int vm = ioctl(kvm, KVM_CREATE_VM, 0UL);
    if (vm < 0)
        return fail("KVM_CREATE_VM");

    uint8_t *mem = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return fail("mmap guest memory");
    memcpy(mem, code, sizeof code);
    memcpy(mem + sizeof code, message, sizeof message);
    struct kvm_userspace_memory_region region = {
        .slot = 0,
        .guest_phys_addr = GUEST_BASE,
        .memory_size = 0x1000,
        .userspace_addr = (uint64_t)(uintptr_t)mem,
    };
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return fail("KVM_SET_USER_MEMORY_REGION");

    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0UL);
    if (vcpu < 0)
        return fail("KVM_CREATE_VCPU");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, NULL);
    if (run_size < (int)sizeof(struct kvm_run))
        return fail("KVM_GET_VCPU_MMAP_SIZE");
    struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED)
        return fail("mmap kvm_run");

    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
        return fail("KVM_GET_SREGS");
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    sregs.ds.base = 0;
    sregs.ds.selector = 0;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
        return fail("KVM_SET_SREGS");
    struct kvm_regs regs = {.rip = GUEST_BASE, .rflags = 0x2};
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
        return fail("KVM_SET_REGS");

    for (;;) {
        if (ioctl(vcpu, KVM_RUN, NULL) < 0)
            return fail("KVM_RUN");
        switch (run->exit_reason) {
        case KVM_EXIT_IO:
            if (run->io.direction != KVM_EXIT_IO_OUT || run->io.port != PORT || run->io.size != 1 ||
                run->io.count != 1) {
                printf("XMLNEST-L2-FAIL unexpected I/O: port 0x%x size %u count %u\n",
                       run->io.port, run->io.size, run->io.count);
                return 1;
            }
            if (used + 1 < sizeof out)
                out[used++] = *((char *)run + run->io.data_offset);
            writes++;
            break;
        case KVM_EXIT_HLT:
            out[used] = '\0';
            printf("XMLNEST-L2-OUT %s\n", out);
            printf("XMLNEST-L2-EXIT hlt after %u port writes\n", writes);
            return 0;
        default:
            printf("XMLNEST-L2-FAIL exit_reason %u (hardware_exit_reason 0x%llx)\n",
                   run->exit_reason, (unsigned long long)run->hw.hardware_exit_reason);
            return 1;
        }
    }
}
