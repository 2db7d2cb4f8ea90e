//! `update`: new resource limits for a running container.

use std::path::Path;

use crate::update::UpdateFlags;

#[derive(clap::Args)]
pub struct UpdateArgs {
    /// Read the new resources (OCI linux.resources JSON) from FILE, or - for stdin
    #[arg(short, long)]
    pub resources: Option<String>,
    /// Memory limit (e.g. 64m, 1g; -1 for none)
    #[arg(long)]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit (-1 for none)
    #[arg(long)]
    pub memory_swap: Option<String>,
    /// Kernel memory limit (accepted and ignored, like runc on new kernels)
    #[arg(long, hide = true)]
    pub kernel_memory: Option<String>,
    #[arg(long, hide = true)]
    pub kernel_memory_tcp: Option<String>,
    /// CPU shares (relative weight)
    #[arg(long)]
    pub cpu_share: Option<u64>,
    /// CPU CFS quota in microseconds per period (-1 for none)
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds
    #[arg(long)]
    pub cpu_period: Option<u64>,
    #[arg(long)]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    /// CPUs the container may use (e.g. 0-1)
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Block IO weight (10-1000)
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    /// Maximum number of processes (-1 for none)
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Intel RDT schemas (not supported)
    #[arg(long)]
    pub l3_cache_schema: Option<String>,
    #[arg(long)]
    pub mem_bw_schema: Option<String>,
    pub container_id: String,
}

pub fn update(root: &Path, a: &UpdateArgs) -> anyhow::Result<()> {
    if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
        return Err(crate::error::Error::Unsupported(
            "Intel RDT (--l3-cache-schema, --mem-bw-schema)".into(),
        )
        .into());
    }
    let flags = UpdateFlags {
        resources_file: a.resources.clone(),
        memory: a.memory.clone(),
        memory_reservation: a.memory_reservation.clone(),
        memory_swap: a.memory_swap.clone(),
        cpu_shares: a.cpu_share,
        cpu_quota: a.cpu_quota,
        cpu_period: a.cpu_period,
        cpu_rt_runtime: a.cpu_rt_runtime,
        cpu_rt_period: a.cpu_rt_period,
        cpuset_cpus: a.cpuset_cpus.clone(),
        cpuset_mems: a.cpuset_mems.clone(),
        blkio_weight: a.blkio_weight,
        pids_limit: a.pids_limit,
    };
    crate::update::update(root, &a.container_id, &flags)?;
    Ok(())
}
