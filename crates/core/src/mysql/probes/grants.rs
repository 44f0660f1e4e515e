//! Grant probes: a tokenizer and parser for `SHOW GRANTS` lines (MySQL 8 and MariaDB
//! spellings, roles, partial revokes) and [`Grants`], what the account may do, as the precheck
//! asks it. Split from the binlog probes, which share nothing with these.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::mysql::connect::{query_text, Conn};
use crate::mysql::error::SourceError;
use crate::mysql::flavor::{parse_version, Flavor, Version};

/// A user or role as `SHOW GRANTS` prints it: `` `name`@`host` `` (roles in MariaDB have no
/// host).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    pub host: Option<String>,
}

impl fmt::Display for Account {
    /// Quoted with backticks, usable in SQL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.name.replace('`', "``"))?;
        if let Some(h) = &self.host {
            write!(f, "@`{}`", h.replace('`', "``"))?;
        }
        Ok(())
    }
}

/// What a grant applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantObject {
    /// `ON *.*`
    Global,
    /// `ON db.*`; the name is a LIKE pattern (`_`, `%` wildcards, `\_` a literal `_`).
    Database(String),
    /// `ON db.table` (or `ON TABLE db.table`).
    Table { database: String, table: String },
    /// `ON FUNCTION|PROCEDURE|PACKAGE db.name`.
    Routine {
        kind: String,
        database: String,
        name: String,
    },
    /// `GRANT PROXY ON account`.
    Proxy(Account),
}

/// One privilege of a grant, upper case (`SELECT`, `REPLICATION SLAVE`, `ALL PRIVILEGES`),
/// with its column list for column-level grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Privilege {
    pub name: String,
    pub columns: Option<Vec<String>>,
}

impl Privilege {
    fn is_all(&self) -> bool {
        self.name == "ALL" || self.name == "ALL PRIVILEGES"
    }
}

/// One line of `SHOW GRANTS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantStatement {
    /// `GRANT privs ON object TO account` or (MySQL partial revokes) `REVOKE ... FROM ...`.
    Privileges {
        revoke: bool,
        privileges: Vec<Privilege>,
        object: GrantObject,
        grantee: Account,
        with_grant_option: bool,
    },
    /// `GRANT role[, role] TO account` (MySQL 8 and MariaDB roles).
    Roles {
        roles: Vec<Account>,
        grantee: Account,
    },
    /// MariaDB: `SET DEFAULT ROLE role FOR account`.
    DefaultRole { role: Account, grantee: Account },
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    /// Backtick-quoted identifier.
    Ident(String),
    /// Single- or double-quoted string.
    Str(String),
    Punct(char),
}

fn tokenize(line: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut it = line.chars().peekable();
    while let Some(&c) = it.peek() {
        match c {
            c if c.is_whitespace() => {
                it.next();
            }
            '`' | '\'' | '"' => {
                it.next();
                let mut s = String::new();
                let mut closed = false;
                while let Some(ch) = it.next() {
                    if ch == c {
                        if it.peek() == Some(&c) {
                            it.next();
                            s.push(c);
                        } else {
                            closed = true;
                            break;
                        }
                    } else if ch == '\\' && c != '`' {
                        if let Some(n) = it.next() {
                            s.push(n);
                        }
                    } else {
                        s.push(ch);
                    }
                }
                if !closed {
                    return Err("unterminated quote".to_string());
                }
                out.push(if c == '`' { Tok::Ident(s) } else { Tok::Str(s) });
            }
            '(' | ')' | ',' | '.' | '@' | '*' => {
                it.next();
                out.push(Tok::Punct(c));
            }
            _ => {
                let mut s = String::new();
                while let Some(&ch) = it.peek() {
                    if ch.is_whitespace() || "()`'\",.@*".contains(ch) {
                        break;
                    }
                    s.push(ch);
                    it.next();
                }
                out.push(Tok::Word(s));
            }
        }
    }
    Ok(out)
}

fn is_kw(t: &Tok, kw: &str) -> bool {
    matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
}

fn name_of(t: &Tok) -> Option<String> {
    match t {
        Tok::Word(w) | Tok::Ident(w) | Tok::Str(w) => Some(w.clone()),
        _ => None,
    }
}

/// Parses `name[@host]` at the start of `toks`; returns the account and tokens consumed.
fn parse_account(toks: &[Tok]) -> Option<(Account, usize)> {
    let name = name_of(toks.first()?)?;
    if toks.get(1) == Some(&Tok::Punct('@')) {
        let host = name_of(toks.get(2)?)?;
        Some((
            Account {
                name,
                host: Some(host),
            },
            3,
        ))
    } else {
        Some((Account { name, host: None }, 1))
    }
}

/// Index of the first top-level (outside parentheses) token that satisfies `pred`.
fn find_top(toks: &[Tok], pred: impl Fn(&Tok) -> bool) -> Option<usize> {
    let mut depth = 0i32;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => depth -= 1,
            _ if depth == 0 && pred(t) => return Some(i),
            _ => {}
        }
    }
    None
}

/// Splits at top-level commas.
fn split_top(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => depth -= 1,
            Tok::Punct(',') if depth == 0 => {
                parts.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&toks[start..]);
    parts
}

fn parse_privilege(toks: &[Tok]) -> Result<Privilege, String> {
    let mut words = Vec::new();
    let mut columns = None;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Word(w) | Tok::Ident(w) => words.push(w.to_ascii_uppercase()),
            Tok::Punct('(') => {
                let close = toks[i..]
                    .iter()
                    .position(|t| *t == Tok::Punct(')'))
                    .ok_or("unclosed column list")?;
                let cols = toks[i + 1..i + close]
                    .iter()
                    .filter_map(name_of)
                    .collect::<Vec<_>>();
                columns = Some(cols);
                i += close;
            }
            t => return Err(format!("unexpected {t:?} in a privilege")),
        }
        i += 1;
    }
    if words.is_empty() {
        return Err("empty privilege".to_string());
    }
    Ok(Privilege {
        name: words.join(" "),
        columns,
    })
}

fn parse_object(toks: &[Tok]) -> Result<GrantObject, String> {
    let (kind, rest) = match toks.first() {
        Some(t) if is_kw(t, "TABLE") => (None, &toks[1..]),
        Some(t) if is_kw(t, "FUNCTION") || is_kw(t, "PROCEDURE") => {
            (name_of(t).map(|k| k.to_ascii_uppercase()), &toks[1..])
        }
        Some(t) if is_kw(t, "PACKAGE") => {
            if toks.get(1).is_some_and(|t| is_kw(t, "BODY")) {
                (Some("PACKAGE BODY".to_string()), &toks[2..])
            } else {
                (Some("PACKAGE".to_string()), &toks[1..])
            }
        }
        _ => (None, toks),
    };
    let part = |t: &Tok| -> Option<String> {
        match t {
            Tok::Punct('*') => Some("*".to_string()),
            other => name_of(other),
        }
    };
    match rest {
        [a, Tok::Punct('.'), b] => {
            let (db, name) = (part(a).ok_or("bad object")?, part(b).ok_or("bad object")?);
            match (kind, db.as_str(), name.as_str()) {
                (None, "*", "*") => Ok(GrantObject::Global),
                (None, _, "*") => Ok(GrantObject::Database(db)),
                (None, _, _) => Ok(GrantObject::Table {
                    database: db,
                    table: name,
                }),
                (Some(kind), _, _) => Ok(GrantObject::Routine {
                    kind,
                    database: db,
                    name,
                }),
            }
        }
        _ => Err("cannot read the object of the grant".to_string()),
    }
}

/// Parses one line of `SHOW GRANTS`. Pure; the error never repeats the line (it may hold a
/// password hash).
pub fn parse_grant_line(line: &str) -> Result<GrantStatement, String> {
    let toks = tokenize(line.trim().trim_end_matches(';'))?;
    let first = toks.first().ok_or("empty line")?;
    if is_kw(first, "SET") {
        // SET DEFAULT ROLE role FOR account
        if toks.len() >= 4 && is_kw(&toks[1], "DEFAULT") && is_kw(&toks[2], "ROLE") {
            let (role, n) = parse_account(&toks[3..]).ok_or("bad role")?;
            let rest = &toks[3 + n..];
            if rest.first().is_some_and(|t| is_kw(t, "FOR")) {
                let (grantee, _) = parse_account(&rest[1..]).ok_or("bad grantee")?;
                return Ok(GrantStatement::DefaultRole { role, grantee });
            }
        }
        return Err("unknown SET statement".to_string());
    }
    let revoke = if is_kw(first, "GRANT") {
        false
    } else if is_kw(first, "REVOKE") {
        true
    } else {
        return Err("not a GRANT or REVOKE statement".to_string());
    };
    let body = &toks[1..];
    let to_kw = if revoke { "FROM" } else { "TO" };
    let to = find_top(body, |t| is_kw(t, to_kw)).ok_or("no TO/FROM")?;
    let (grantee, used) = parse_account(&body[to + 1..]).ok_or("bad grantee")?;
    let tail = &body[to + 1 + used..];
    let with_grant_option = tail
        .windows(3)
        .any(|w| is_kw(&w[0], "WITH") && is_kw(&w[1], "GRANT") && is_kw(&w[2], "OPTION"));
    match find_top(&body[..to], |t| is_kw(t, "ON")) {
        Some(on) => {
            let privileges = split_top(&body[..on])
                .into_iter()
                .map(parse_privilege)
                .collect::<Result<Vec<_>, _>>()?;
            let obj_toks = &body[on + 1..to];
            let object = if privileges.len() == 1 && privileges[0].name == "PROXY" {
                GrantObject::Proxy(parse_account(obj_toks).ok_or("bad proxy account")?.0)
            } else {
                parse_object(obj_toks)?
            };
            Ok(GrantStatement::Privileges {
                revoke,
                privileges,
                object,
                grantee,
                with_grant_option,
            })
        }
        None if !revoke => {
            let roles = split_top(&body[..to])
                .into_iter()
                .map(|p| match parse_account(p) {
                    Some((a, n)) if n == p.len() => Ok(a),
                    _ => Err("bad role name".to_string()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(GrantStatement::Roles { roles, grantee })
        }
        None => Err("REVOKE without ON".to_string()),
    }
}

/// A `SHOW GRANTS` line safe to show: anything from `IDENTIFIED` on is cut.
pub fn redact_grant_line(line: &str) -> String {
    let upper = line.to_ascii_uppercase();
    match upper.find(" IDENTIFIED ") {
        Some(i) => format!("{} IDENTIFIED <redacted>", &line[..i]),
        None => line.to_string(),
    }
}

/// MySQL LIKE with `%`, `_` and `\` escapes (database-level grants are patterns).
///
/// Greedy matching that returns to the last `%` on a mismatch: O(pattern × text) at worst. (A
/// plain recursive matcher tries every split at every `%`, which a pattern of many `%` turns
/// into exponential time.)
pub(super) fn like_match(pattern: &str, text: &str) -> bool {
    enum P {
        Any,
        One,
        Lit(char),
    }
    let mut toks = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        toks.push(match c {
            '%' => P::Any,
            '_' => P::One,
            // A trailing backslash stands for itself.
            '\\' => P::Lit(chars.next().unwrap_or('\\')),
            c => P::Lit(c),
        });
    }
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // After a `%`: the pattern position after it, and the text position it now stands up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match toks.get(pi) {
            Some(P::Any) => {
                star = Some((pi + 1, ti));
                pi += 1;
            }
            Some(P::One) => {
                pi += 1;
                ti += 1;
            }
            Some(P::Lit(c)) if *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                // Let the last `%` take one more character and try again from there.
                Some((after, upto)) => {
                    pi = after;
                    ti = upto + 1;
                    star = Some((after, upto + 1));
                }
                None => return false,
            },
        }
    }
    toks.get(pi..)
        .is_some_and(|rest| rest.iter().all(|p| matches!(p, P::Any)))
}

/// The privileges of the migration account.
///
/// Roles, best effort: MySQL 8 privileges of the roles *active in a new session* (default
/// roles, or all with `activate_all_roles_on_login`) are included via `SHOW GRANTS FOR
/// CURRENT_USER() USING ...`; MariaDB's `SHOW GRANTS` already includes the current (default)
/// role's grants, and if not, `SHOW GRANTS FOR role` is added. Roles that are granted but not
/// active are listed in `inactive_roles()`: a new session (e.g. the binlog reader's) would not
/// have their privileges; the fix is `SET DEFAULT ROLE`. Nested roles are not expanded on
/// MariaDB. MySQL's `partial_revokes` are honoured for database-level REVOKEs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    /// `CURRENT_USER()`, e.g. `tsmigrate@%`.
    pub current_user: String,
    pub flavor: Flavor,
    pub version: Version,
    pub statements: Vec<GrantStatement>,
    /// Roles granted to the user.
    pub granted_roles: Vec<Account>,
    /// Roles active in a new session (`CURRENT_ROLE()`).
    pub active_roles: Vec<Account>,
    /// Lines that could not be parsed (redacted).
    pub unparsed: Vec<String>,
}

impl Grants {
    /// Builds from `SHOW GRANTS` lines. Pure, for tests.
    pub fn from_lines(
        current_user: &str,
        flavor: Flavor,
        version: Version,
        lines: &[String],
        active_roles: Vec<Account>,
    ) -> Grants {
        let mut g = Grants {
            current_user: current_user.to_string(),
            flavor,
            version,
            statements: Vec::new(),
            granted_roles: Vec::new(),
            active_roles,
            unparsed: Vec::new(),
        };
        g.add_lines(lines);
        g
    }

    pub(super) fn add_lines(&mut self, lines: &[String]) {
        for line in lines {
            match parse_grant_line(line) {
                Ok(st) => {
                    if let GrantStatement::Roles { roles, .. } = &st {
                        for r in roles {
                            if !self.granted_roles.contains(r) {
                                self.granted_roles.push(r.clone());
                            }
                        }
                    }
                    if !self.statements.contains(&st) {
                        self.statements.push(st);
                    }
                }
                Err(e) => {
                    tracing::debug!(problem = %e, "could not parse a SHOW GRANTS line");
                    self.unparsed.push(redact_grant_line(line));
                }
            }
        }
    }

    /// Granted roles that a new session does not activate.
    pub fn inactive_roles(&self) -> Vec<&Account> {
        self.granted_roles
            .iter()
            .filter(|r| {
                !self.active_roles.iter().any(|a| {
                    a.name == r.name && (a.host == r.host || a.host.is_none() || r.host.is_none())
                })
            })
            .collect()
    }

    fn grants(&self) -> impl Iterator<Item = (&[Privilege], &GrantObject, bool)> {
        self.statements.iter().filter_map(|s| match s {
            GrantStatement::Privileges {
                revoke,
                privileges,
                object,
                ..
            } => Some((privileges.as_slice(), object, *revoke)),
            _ => None,
        })
    }

    /// True when `name` (upper case) or ALL is granted `ON *.*`.
    pub fn has_global(&self, name: &str) -> bool {
        self.grants().any(|(privs, obj, revoke)| {
            !revoke
                && *obj == GrantObject::Global
                && privs
                    .iter()
                    .any(|p| p.columns.is_none() && (p.is_all() || p.name == name))
        })
    }

    /// REPLICATION SLAVE (MariaDB alias REPLICATION REPLICA) or ALL on `*.*`: needed to read
    /// the binlog stream.
    pub fn has_replication_slave(&self) -> bool {
        self.has_global("REPLICATION SLAVE") || self.has_global("REPLICATION REPLICA")
    }

    /// REPLICATION CLIENT or ALL on `*.*`, needed for `SHOW MASTER STATUS` / `SHOW BINARY
    /// LOGS`. On MariaDB >= 10.5 REPLICATION CLIENT is an alias of BINLOG MONITOR (SHOW GRANTS
    /// prints the latter). SUPER counts on MySQL and MariaDB < 10.5.2. REPLICA MONITOR does
    /// not count: it only allows SHOW REPLICA STATUS (see `has_replica_monitor`).
    pub fn has_replication_client(&self) -> bool {
        let super_counts = match self.flavor {
            Flavor::MySql => true,
            Flavor::MariaDb => self.version < (10, 5, 2),
        };
        self.has_global("REPLICATION CLIENT")
            || self.has_global("BINLOG MONITOR")
            || (super_counts && self.has_global("SUPER"))
    }

    /// MariaDB >= 10.5.9 REPLICA MONITOR (or ALL): SHOW REPLICA STATUS. Not needed here.
    pub fn has_replica_monitor(&self) -> bool {
        self.has_global("REPLICA MONITOR")
    }

    /// True when the account may `SELECT` every column of `database.table`: SELECT or ALL on
    /// `*.*` (unless a partial REVOKE removes it for the database), on a database pattern that
    /// matches, or on the table itself. Column-level grants do not count (a full copy reads
    /// every column).
    pub fn can_select(&self, database: &str, table: &str) -> bool {
        self.can("SELECT", database, table)
    }

    /// True when the account holds table privilege `privilege` (e.g. `INSERT`) on
    /// `database.table`, by the rules of [`Grants::can_select`].
    pub fn can(&self, privilege: &str, database: &str, table: &str) -> bool {
        let gives_select = |privs: &[Privilege]| {
            privs
                .iter()
                .any(|p| p.columns.is_none() && (p.is_all() || p.name == privilege))
        };
        let revoked_for_db = self.grants().any(|(privs, obj, revoke)| {
            revoke
                && gives_select(privs)
                && matches!(obj, GrantObject::Database(d) if d == database)
        });
        self.grants().any(|(privs, obj, revoke)| {
            !revoke
                && gives_select(privs)
                && match obj {
                    GrantObject::Global => !revoked_for_db,
                    GrantObject::Database(pattern) => like_match(pattern, database),
                    GrantObject::Table {
                        database: d,
                        table: t,
                    } => d == database && t == table,
                    _ => false,
                }
        })
    }
}

pub(super) fn parse_role_list(s: &str) -> Vec<Account> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("NONE") {
        return Vec::new();
    }
    match tokenize(s) {
        Ok(toks) => split_top(&toks)
            .into_iter()
            .filter_map(|p| parse_account(p).map(|(a, _)| a))
            .collect(),
        Err(_) => Vec::new(),
    }
}

async fn show_grants(conn: &mut Conn, sql: &str) -> Result<Vec<String>, SourceError> {
    let rows = query_text(conn, sql, "reading the account's grants").await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r.into_iter().next().and_then(|(_, v)| v))
        .collect())
}

/// Reads the grants of the connected account (see [`Grants`] for how roles are handled).
pub async fn grants(conn: &mut Conn) -> Result<Grants, SourceError> {
    const CTX: &str = "reading the account's grants";
    let rows = query_text(conn, "SELECT VERSION(), CURRENT_USER()", CTX).await?;
    let row = rows
        .first()
        .ok_or_else(|| SourceError::unexpected(CTX, "SELECT VERSION() returned no row"))?;
    let version_string = row.first().and_then(|(_, v)| v.clone()).unwrap_or_default();
    let current_user = row.get(1).and_then(|(_, v)| v.clone()).unwrap_or_default();
    let (flavor, version) = parse_version(&version_string, "").ok_or_else(|| {
        SourceError::unexpected(CTX, format!("cannot parse the version {version_string:?}"))
    })?;
    // CURRENT_ROLE() exists on MySQL 8 and MariaDB >= 10.0.5; elsewhere there are no roles.
    let active_roles = match query_text(conn, "SELECT CURRENT_ROLE()", CTX).await {
        Ok(rows) => rows
            .first()
            .and_then(|r| r.first())
            .and_then(|(_, v)| v.as_deref())
            .map(parse_role_list)
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let lines = show_grants(conn, "SHOW GRANTS").await?;
    let mut g = Grants::from_lines(&current_user, flavor, version, &lines, active_roles);
    if g.active_roles.is_empty() {
        return Ok(g);
    }
    match flavor {
        Flavor::MySql => {
            let using = g
                .active_roles
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            match show_grants(
                conn,
                &format!("SHOW GRANTS FOR CURRENT_USER() USING {using}"),
            )
            .await
            {
                Ok(more) => g.add_lines(&more),
                Err(e) => {
                    tracing::warn!(error = %e, "SHOW GRANTS ... USING failed; role privileges not included")
                }
            }
        }
        Flavor::MariaDb => {
            for role in g.active_roles.clone() {
                let listed = g.statements.iter().any(|s| {
                    matches!(s, GrantStatement::Privileges { grantee, .. } if grantee.name == role.name && grantee.host.is_none())
                });
                if !listed {
                    match show_grants(conn, &format!("SHOW GRANTS FOR {role}")).await {
                        Ok(more) => g.add_lines(&more),
                        Err(e) => tracing::warn!(error = %e, "SHOW GRANTS FOR role failed"),
                    }
                }
            }
        }
    }
    Ok(g)
}
