package e2e

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// processCPU is the CPU time (user and system) of the calling process, all
// its threads, from getrusage(RUSAGE_SELF): microsecond resolution, no
// children.
func processCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// udpSocket opens a blocking IPv4 UDP socket (outside Go's netpoller: its
// reads and writes are plain system calls on the calling thread) bound to
// ip:port, with send and receive buffers of buf bytes (forced past the
// system's limits when the process may). It returns the socket and the
// port it got.
func udpSocket(ip [4]byte, port, buf int) (fd, boundPort int, err error) {
	fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, 0, fmt.Errorf("e2e: socket: %w", err)
	}
	if buf > 0 {
		setBuffer(fd, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, buf)
		setBuffer(fd, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, buf)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: ip, Port: port}); err != nil {
		_ = unix.Close(fd)
		return -1, 0, fmt.Errorf("e2e: bind %v:%d: %w", ip, port, err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		_ = unix.Close(fd)
		return -1, 0, fmt.Errorf("e2e: getsockname: %w", err)
	}
	return fd, sa.(*unix.SockaddrInet4).Port, nil
}

// setBuffer sets a socket buffer: the forcing option first (root or
// CAP_NET_ADMIN), else the ordinary one, which the kernel caps at
// net.core.[rw]mem_max.
func setBuffer(fd, force, plain, n int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, n) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, n)
	}
}

// granted is what the kernel gave a socket's buffer (opt SO_SNDBUF or
// SO_RCVBUF): twice the asked size, for its bookkeeping, up to its limit.
func granted(fd, opt int) int {
	n, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt)
	return n
}

// sendmmsg sends msgs in one call; it returns how many the kernel took.
// It is the floor's own, not session/internal/mmsg's (which it resembles):
// the floor measures the kernel without handsup's code. As a bare sender
// would, it makes a raw system call that the Go runtime
// does not see (an ordinary one that lasts makes the runtime hand its P
// to another thread and poll every 20 µs), and waits, in an ordinary
// one, only when the socket's buffer is full.
func sendmmsg(fd int, msgs []unix.Mmsghdr) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	p, n := uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs))
	r, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(fd), p, n, unix.MSG_DONTWAIT, 0, 0)
	if errno == unix.EAGAIN {
		r, _, errno = unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), p, n, 0, 0, 0)
	}
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// recvmmsg receives up to len(msgs) datagrams, without waiting: EAGAIN
// when there are none.
func recvmmsg(fd int, msgs []unix.Mmsghdr) (int, error) {
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// udpCounters are the machine's UDP counters from /proc/net/snmp: the
// datagrams the kernel dropped for want of buffer space. They count every
// process's UDP, not only the benchmark's.
type udpCounters struct {
	InErrors, RcvbufErrors, SndbufErrors uint64
}

func readUDPCounters() udpCounters {
	f, err := os.Open("/proc/net/snmp")
	if err != nil {
		return udpCounters{}
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = fields
			continue
		}
		var c udpCounters
		for i, v := range fields {
			if i >= len(names) {
				break
			}
			n, _ := strconv.ParseUint(v, 10, 64)
			switch names[i] {
			case "InErrors":
				c.InErrors = n
			case "RcvbufErrors":
				c.RcvbufErrors = n
			case "SndbufErrors":
				c.SndbufErrors = n
			}
		}
		return c
	}
	return udpCounters{}
}

func (c udpCounters) since(old udpCounters) udpCounters {
	return udpCounters{c.InErrors - old.InErrors, c.RcvbufErrors - old.RcvbufErrors, c.SndbufErrors - old.SndbufErrors}
}

// loadAverage is /proc/loadavg's first three fields.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// osFile wraps a descriptor in an *os.File.
func osFile(fd int) *os.File { return os.NewFile(uintptr(fd), "udp") }
