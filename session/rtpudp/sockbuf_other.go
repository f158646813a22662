//go:build !linux

package rtpudp

import "net"

func socketBuffers(*net.UDPConn) (send, recv int) { return 0, 0 }
