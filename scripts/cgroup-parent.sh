# Sourced by the scripts that run rbox containers (demo.sh, bench-rbox.sh).
# They give rbox a cgroup parent of their own (RBOX_CGROUP_PARENT) rather
# than the shared default /rbox, and remove it on exit.
# rmdir_cgroup PATH: rmdir the cgroup PATH (like /rbox-demo-123) in every
# hierarchy: the v1 controllers and the cgroup2 mount (/sys/fs/cgroup/unified
# on a hybrid host, /sys/fs/cgroup on a pure v2 one). rrun already removed it
# with the last container when it made it; a PATH that is not empty holds a
# container's cgroup that was left behind: reported, and the status is 1.
rmdir_cgroup() {
  local h rc=0
  for h in $(awk '$3 == "cgroup" || $3 == "cgroup2" {print $2}' /proc/self/mounts | sort -u); do
    [ -d "$h$1" ] || continue
    if ! rmdir "$h$1" 2>/dev/null; then
      echo "cgroup $h$1 is left: it holds $(find "$h$1" -mindepth 1 -maxdepth 1 -type d | tr '\n' ' ')" >&2
      rc=1
    fi
  done
  return $rc
}
