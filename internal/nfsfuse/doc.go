// Package nfsfuse is a userspace NFSv3 client mounted with FUSE, for test
// rigs on machines whose kernel has no NFS client: it talks NFSv3 over TCP
// (through the RPC and XDR layers of github.com/willscott/go-nfs-client) to
// a real NFS server and serves the export as a FUSE file system (through
// github.com/hanwen/go-fuse/v2).
//
// It keeps no caches, so that a change made through another client is seen
// at once: every path resolution is a LOOKUP, every stat a GETATTR, every
// read a READ (the kernel's entry, attribute and negative caches are off and
// files are opened with direct I/O), and every write is a FILE_SYNC WRITE,
// so that flush and fsync have nothing left to do. An exclusive create
// (O_CREAT|O_EXCL) is a GUARDED CREATE: of two clients creating the same
// name, exactly one succeeds and the other gets EEXIST from the server.
//
// A FUSE node is an NFS file handle. NFS status codes become the matching
// errno (NFS3ERR_EXIST is EEXIST, NFS3ERR_NOTEMPTY is ENOTEMPTY, ...); a
// transport failure or an RPC that gets no answer within the call timeout is
// EIO.
//
// It is Linux-only (FUSE mounts as root with mount(2)); no production code
// uses it.
package nfsfuse
