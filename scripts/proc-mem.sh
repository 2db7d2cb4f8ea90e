# Sourced by the bench scripts.
# proc_mem ERE: VmRSS and Pss in kB and the thread count of the first
# process whose command line matches ERE ("0 0 0" when none does).
proc_mem() {
  local p
  for p in /proc/[0-9]*; do
    if { tr "\0" " " <"$p/cmdline"; } 2>/dev/null | grep -qE -- "$1"; then
      echo "$(awk '/^VmRSS/ {print $2}' "$p/status") $(awk '/^Pss:/ {print $2}' "$p/smaps_rollup") $(awk '/^Threads/ {print $2}' "$p/status")"
      return
    fi
  done
  echo "0 0 0"
}
