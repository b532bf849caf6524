//! `check users`: accounts whose `expires` day is near (within [`WINDOW_DAYS`]), so
//! someone can be asked to extend it before her access ends, and those whose day has
//! passed (the plan shows them as gone). From the inventory and today's date alone.

use super::CheckKind;
use crate::diagnostic::{Code, Diagnostic};
use crate::inventory::Inventory;
use serde::Serialize;

/// How far ahead `check users` looks.
pub const WINDOW_DAYS: i64 = 30;

/// One user with an `expires` day in the window or past.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpiringUser {
    pub user: String,
    pub expires: String,
    /// Days from today; 0 or less: expired.
    pub days_left: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsersReport {
    pub expiring: Vec<ExpiringUser>,
}

/// Users (not disabled) whose account expires within [`WINDOW_DAYS`] or has expired.
pub fn check(inventory: &Inventory) -> UsersReport {
    let Some(today) = inventory.run.today else {
        return UsersReport {
            expiring: Vec::new(),
        };
    };
    let mut expiring: Vec<ExpiringUser> = inventory
        .users
        .iter()
        .filter(|u| !u.disabled)
        .filter_map(|u| {
            let e = u.expires?;
            let days_left = e.day - today;
            (days_left <= WINDOW_DAYS).then(|| ExpiringUser {
                user: u.name.clone(),
                expires: e.date(),
                days_left,
            })
        })
        .collect();
    expiring.sort_by_key(|e| e.days_left);
    UsersReport { expiring }
}

impl UsersReport {
    pub fn findings(&self) -> Vec<Diagnostic> {
        if self.expiring.is_empty() {
            return vec![Diagnostic::ok(
                Code::AccountExpiring,
                "users",
                format!("no account expires in the next {WINDOW_DAYS} days"),
            )
            .from_check(CheckKind::Users)];
        }
        self.expiring
            .iter()
            .map(|e| {
                let d = if e.days_left > 0 {
                    Diagnostic::warning(
                        Code::AccountExpiring,
                        &e.user,
                        format!(
                            "`{}` expires on {}, in {} day{}",
                            e.user,
                            e.expires,
                            e.days_left,
                            if e.days_left == 1 { "" } else { "s" }
                        ),
                    )
                    .hint("extend `expires` in the inventory and apply, or let it end")
                } else {
                    Diagnostic::info(
                        Code::AccountExpiring,
                        &e.user,
                        format!(
                            "`{}` expired on {}: her access has ended",
                            e.user, e.expires
                        ),
                    )
                    .hint("`closetctl apply` finishes removing it (associations, tailnet groups)")
                };
                d.from_check(CheckKind::Users)
            })
            .collect()
    }
}

/// The findings of [`check`].
pub fn expiring(inventory: &Inventory) -> Vec<Diagnostic> {
    check(inventory)
        .findings()
        .into_iter()
        .filter(|d| d.severity != crate::diagnostic::Severity::Ok)
        .collect()
}
