//! Rows of user-defined networks (net/usernet.rs gives them meaning).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use rusqlite::params;

use super::db::Store;
use super::error::Result;

/// A user-defined network as the store knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserNetwork {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub bridge: String,
    pub created: String,
}

impl Store {
    /// Every user-defined network, oldest first (a row that does not
    /// parse is left out).
    pub fn networks(&self) -> Result<Vec<UserNetwork>> {
        let mut stmt = self
            .db
            .prepare(
                "SELECT id, name, driver, subnet, gateway, bridge, created FROM networks \
                 ORDER BY created",
            )
            .map_err(self.db_err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                ))
            })
            .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.db_err())?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, name, driver, subnet, gateway, bridge, created)| {
                Some(UserNetwork {
                    id,
                    name,
                    driver,
                    subnet: subnet.parse().ok()?,
                    gateway: gateway.parse().ok()?,
                    bridge,
                    created,
                })
            })
            .collect())
    }

    pub fn insert_network(&self, n: &UserNetwork) -> Result<()> {
        self.db
            .execute(
                "INSERT INTO networks (id, name, driver, subnet, gateway, bridge, created) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    n.id,
                    n.name,
                    n.driver,
                    n.subnet.to_string(),
                    n.gateway.to_string(),
                    n.bridge,
                    n.created
                ],
            )
            .map_err(self.db_err())?;
        Ok(())
    }

    pub fn delete_network(&self, id: &str) -> Result<()> {
        self.db
            .execute("DELETE FROM networks WHERE id = ?1", [id])
            .map_err(self.db_err())?;
        Ok(())
    }
}
