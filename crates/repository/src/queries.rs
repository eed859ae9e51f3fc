//! The SQL of every repository method, written once and instantiated for both backends.
//!
//! Both schemas use the same column names and types (integers for instants and day numbers,
//! UUIDs bound natively), and both engines accept `$N` placeholders, so one query text serves
//! both; `lock_clause` is the only dialect difference (`FOR UPDATE` on PostgreSQL, nothing on
//! SQLite, whose write transactions already hold the database's single write lock).

macro_rules! user_columns {
    () => {
        "users.id, users.username, users.display_name, users.timezone, users.created_at_us"
    };
}

macro_rules! activity_columns {
    () => {
        "id, user_id, sport, title, started_at_us, utc_offset_s, duration_s, distance_m, visibility, \
         created_at_us, updated_at_us"
    };
}

/// Which activities a statistics scope counts (bound as `$2`); mirrors `domain::StatsScope`.
macro_rules! scope_filter {
    () => {
        "($2 = 'owner' OR visibility = 'public' OR ($2 = 'friends' AND visibility = 'friends'))"
    };
}

/// Pairs each activity (`a`) with every scope (`s.scope`) that counts it.
macro_rules! scopes_join {
    () => {
        "(SELECT 'owner' AS scope UNION ALL SELECT 'friends' UNION ALL SELECT 'public') s \
         ON s.scope = 'owner' OR (s.scope = 'friends' AND a.visibility IN ('friends', 'public')) \
         OR (s.scope = 'public' AND a.visibility = 'public')"
    };
}

macro_rules! impl_repositories {
    ($db:ty, lock_clause = $lock:literal) => {
        impl $crate::UserRepo for $crate::SqlxUnitOfWork<$db> {
            async fn insert_user(&mut self, user: &stride_domain::User, password_hash: &str) -> $crate::RepoResult<()> {
                let query = sqlx::query(
                    "INSERT INTO users (id, username, display_name, timezone, password_hash, created_at_us) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(user.id.as_uuid())
                .bind(user.username.as_str())
                .bind(user.display_name.as_str())
                .bind(user.timezone.name())
                .bind(password_hash)
                .bind($crate::rows::micros(user.created_at));
                run!(self, query, execute)?;
                Ok(())
            }

            async fn user_by_id(
                &mut self,
                id: stride_domain::UserId,
            ) -> $crate::RepoResult<Option<stride_domain::User>> {
                let query = sqlx::query_as::<_, $crate::rows::UserRow>(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE id = $1"
                ))
                .bind(id.as_uuid());
                let row = run!(self, query, fetch_optional)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn credentials_by_username(
                &mut self,
                username: &stride_domain::Username,
            ) -> $crate::RepoResult<Option<$crate::Credentials>> {
                let query = sqlx::query_as::<_, $crate::rows::CredentialsRow>(concat!(
                    "SELECT ",
                    user_columns!(),
                    ", users.password_hash FROM users WHERE username = $1"
                ))
                .bind(username.as_str());
                let row = run!(self, query, fetch_optional)?;
                row.map(|row| Ok($crate::Credentials { user: row.user.try_into()?, password_hash: row.password_hash }))
                    .transpose()
            }

            async fn update_user_profile(&mut self, user: &stride_domain::User) -> $crate::RepoResult<()> {
                let query = sqlx::query("UPDATE users SET display_name = $2, timezone = $3 WHERE id = $1")
                    .bind(user.id.as_uuid())
                    .bind(user.display_name.as_str())
                    .bind(user.timezone.name());
                let done = run!(self, query, execute)?;
                if done.rows_affected() == 0 { Err($crate::RepoError::NotFound) } else { Ok(()) }
            }
        }

        impl $crate::SessionRepo for $crate::SqlxUnitOfWork<$db> {
            async fn insert_session(&mut self, session: &$crate::NewSession) -> $crate::RepoResult<()> {
                let query = sqlx::query(
                    "INSERT INTO sessions (token_hash, user_id, created_at_us, expires_at_us) VALUES ($1, $2, $3, $4)",
                )
                .bind(&session.token_hash[..])
                .bind(session.user_id.as_uuid())
                .bind($crate::rows::micros(session.created_at))
                .bind($crate::rows::micros(session.expires_at));
                run!(self, query, execute)?;
                Ok(())
            }

            async fn user_by_session(
                &mut self,
                token_hash: &[u8; 32],
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::RepoResult<Option<(stride_domain::User, i64)>> {
                let query = sqlx::query_as::<_, $crate::rows::SessionUserRow>(concat!(
                    "SELECT ",
                    user_columns!(),
                    ", users.stats_version FROM sessions JOIN users ON users.id = sessions.user_id \
                     WHERE sessions.token_hash = $1 AND sessions.expires_at_us > $2"
                ))
                .bind(&token_hash[..])
                .bind($crate::rows::micros(now));
                let row = run!(self, query, fetch_optional)?;
                row.map(|row| Ok((row.user.try_into()?, row.stats_version))).transpose()
            }

            async fn delete_session(&mut self, token_hash: &[u8; 32]) -> $crate::RepoResult<bool> {
                let query = sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(&token_hash[..]);
                let done = run!(self, query, execute)?;
                Ok(done.rows_affected() > 0)
            }
        }

        impl $crate::ActivityRepo for $crate::SqlxUnitOfWork<$db> {
            async fn insert_activity(&mut self, activity: &stride_domain::Activity) -> $crate::RepoResult<()> {
                let query = sqlx::query(concat!(
                    "INSERT INTO activities (",
                    activity_columns!(),
                    ", local_day) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                ))
                .bind(activity.id.as_uuid())
                .bind(activity.user_id.as_uuid())
                .bind(activity.sport.as_str())
                .bind(activity.title.as_str())
                .bind(activity.started_at.utc_micros())
                .bind(activity.started_at.offset_seconds())
                .bind(activity.duration.seconds() as i32)
                .bind(activity.distance.metres())
                .bind(activity.visibility.as_str())
                .bind($crate::rows::micros(activity.created_at))
                .bind($crate::rows::micros(activity.updated_at))
                .bind($crate::rows::day_number(activity.local_date().date()));
                run!(self, query, execute)?;
                Ok(())
            }

            async fn activity_by_id(
                &mut self,
                id: stride_domain::ActivityId,
            ) -> $crate::RepoResult<Option<stride_domain::Activity>> {
                let query = sqlx::query_as::<_, $crate::rows::ActivityRow>(concat!(
                    "SELECT ",
                    activity_columns!(),
                    " FROM activities WHERE id = $1"
                ))
                .bind(id.as_uuid());
                let row = run!(self, query, fetch_optional)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn activity_by_id_for_update(
                &mut self,
                id: stride_domain::ActivityId,
            ) -> $crate::RepoResult<Option<stride_domain::Activity>> {
                let query = sqlx::query_as::<_, $crate::rows::ActivityRow>(concat!(
                    "SELECT ",
                    activity_columns!(),
                    " FROM activities WHERE id = $1",
                    $lock
                ))
                .bind(id.as_uuid());
                let row = run!(self, query, fetch_optional)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn list_activities(
                &mut self,
                owner: stride_domain::UserId,
                after: Option<stride_domain::ActivityCursor>,
                limit: u32,
            ) -> $crate::RepoResult<Vec<stride_domain::Activity>> {
                let rows = match after {
                    None => {
                        let query = sqlx::query_as::<_, $crate::rows::ActivityRow>(concat!(
                            "SELECT ",
                            activity_columns!(),
                            " FROM activities WHERE user_id = $1 \
                             ORDER BY started_at_us DESC, id DESC LIMIT $2"
                        ))
                        .bind(owner.as_uuid())
                        .bind(i64::from(limit));
                        run!(self, query, fetch_all)?
                    }
                    Some(cursor) => {
                        let query = sqlx::query_as::<_, $crate::rows::ActivityRow>(concat!(
                            "SELECT ",
                            activity_columns!(),
                            " FROM activities WHERE user_id = $1 \
                             AND (started_at_us < $2 OR (started_at_us = $2 AND id < $3)) \
                             ORDER BY started_at_us DESC, id DESC LIMIT $4"
                        ))
                        .bind(owner.as_uuid())
                        .bind(cursor.started_at_utc_micros)
                        .bind(cursor.id.as_uuid())
                        .bind(i64::from(limit));
                        run!(self, query, fetch_all)?
                    }
                };
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn update_activity(&mut self, activity: &stride_domain::Activity) -> $crate::RepoResult<()> {
                let query = sqlx::query(
                    "UPDATE activities SET sport = $2, title = $3, started_at_us = $4, utc_offset_s = $5, \
                     local_day = $6, duration_s = $7, distance_m = $8, visibility = $9, updated_at_us = $10 \
                     WHERE id = $1",
                )
                .bind(activity.id.as_uuid())
                .bind(activity.sport.as_str())
                .bind(activity.title.as_str())
                .bind(activity.started_at.utc_micros())
                .bind(activity.started_at.offset_seconds())
                .bind($crate::rows::day_number(activity.local_date().date()))
                .bind(activity.duration.seconds() as i32)
                .bind(activity.distance.metres())
                .bind(activity.visibility.as_str())
                .bind($crate::rows::micros(activity.updated_at));
                let done = run!(self, query, execute)?;
                if done.rows_affected() == 0 { Err($crate::RepoError::NotFound) } else { Ok(()) }
            }

            async fn delete_activity(&mut self, id: stride_domain::ActivityId) -> $crate::RepoResult<bool> {
                let query = sqlx::query("DELETE FROM activities WHERE id = $1").bind(id.as_uuid());
                let done = run!(self, query, execute)?;
                Ok(done.rows_affected() > 0)
            }
        }

        impl $crate::IdempotencyRepo for $crate::SqlxUnitOfWork<$db> {
            async fn find_idempotency_key(
                &mut self,
                user: stride_domain::UserId,
                key: &str,
                not_before: chrono::DateTime<chrono::Utc>,
            ) -> $crate::RepoResult<Option<$crate::IdempotencyRecord>> {
                let query = sqlx::query_as::<_, (Vec<u8>, uuid::Uuid)>(
                    "SELECT fingerprint, activity_id FROM idempotency_keys \
                     WHERE user_id = $1 AND key = $2 AND created_at_us >= $3",
                )
                .bind(user.as_uuid())
                .bind(key)
                .bind($crate::rows::micros(not_before));
                let row = run!(self, query, fetch_optional)?;
                Ok(row.map(|(fingerprint, activity_id)| $crate::IdempotencyRecord {
                    fingerprint,
                    activity_id: stride_domain::ActivityId::from_uuid(activity_id),
                }))
            }

            async fn record_idempotency_key(
                &mut self,
                user: stride_domain::UserId,
                key: &str,
                record: &$crate::IdempotencyRecord,
                now: chrono::DateTime<chrono::Utc>,
                not_before: chrono::DateTime<chrono::Utc>,
            ) -> $crate::RepoResult<()> {
                // Only an expired record may be overwritten; a live one means another request
                // with this key committed first.
                let query = sqlx::query(
                    "INSERT INTO idempotency_keys (user_id, key, fingerprint, activity_id, created_at_us) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (user_id, key) DO UPDATE \
                     SET fingerprint = excluded.fingerprint, activity_id = excluded.activity_id, \
                         created_at_us = excluded.created_at_us \
                     WHERE idempotency_keys.created_at_us < $6",
                )
                .bind(user.as_uuid())
                .bind(key)
                .bind(&record.fingerprint[..])
                .bind(record.activity_id.as_uuid())
                .bind($crate::rows::micros(now))
                .bind($crate::rows::micros(not_before));
                let done = run!(self, query, execute)?;
                if done.rows_affected() == 0 {
                    Err($crate::RepoError::Conflict { constraint: "idempotency_keys_pkey".into() })
                } else {
                    Ok(())
                }
            }
        }

        impl $crate::StatsRepo for $crate::SqlxUnitOfWork<$db> {
            async fn stats_subject(&mut self, user: stride_domain::UserId) -> $crate::RepoResult<Option<$crate::StatsSubject>> {
                let query = sqlx::query_as::<_, (String, i64)>("SELECT timezone, stats_version FROM users WHERE id = $1")
                    .bind(user.as_uuid());
                let row = run!(self, query, fetch_optional)?;
                row.map(|(timezone, version)| {
                    let timezone = stride_domain::TimeZone::parse(&timezone)
                        .map_err(|_| $crate::RepoError::Corrupt(format!("timezone: {timezone:?}")))?;
                    Ok($crate::StatsSubject { timezone, version })
                })
                .transpose()
            }

            async fn stats_totals(
                &mut self,
                user: stride_domain::UserId,
                scope: stride_domain::StatsScope,
            ) -> $crate::RepoResult<$crate::StatsTotals> {
                let query = sqlx::query_as::<_, (i64, i64, i64)>(
                    "SELECT activity_count, distance_mm, duration_s FROM stats_totals WHERE user_id = $1 AND scope = $2",
                )
                .bind(user.as_uuid())
                .bind(scope.as_str());
                let row = run!(self, query, fetch_optional)?;
                Ok(row.map_or_else(Default::default, |(activities, distance_mm, duration_s)| $crate::StatsTotals {
                    activities,
                    distance_mm,
                    duration_s,
                }))
            }

            async fn latest_run_starting_by(
                &mut self,
                user: stride_domain::UserId,
                scope: stride_domain::StatsScope,
                day: i32,
            ) -> $crate::RepoResult<Option<stride_domain::Run>> {
                let query = sqlx::query_as::<_, (i32, i32)>(
                    "SELECT start_day, end_day FROM stats_runs WHERE user_id = $1 AND scope = $2 AND start_day <= $3 \
                     ORDER BY start_day DESC LIMIT 1",
                )
                .bind(user.as_uuid())
                .bind(scope.as_str())
                .bind(day);
                Ok(run!(self, query, fetch_optional)?.map(|(start, end)| stride_domain::Run { start, end }))
            }

            async fn longest_run(
                &mut self,
                user: stride_domain::UserId,
                scope: stride_domain::StatsScope,
            ) -> $crate::RepoResult<Option<stride_domain::Run>> {
                let query = sqlx::query_as::<_, (i32, i32)>(
                    "SELECT start_day, end_day FROM stats_runs WHERE user_id = $1 AND scope = $2 \
                     ORDER BY length DESC LIMIT 1",
                )
                .bind(user.as_uuid())
                .bind(scope.as_str());
                Ok(run!(self, query, fetch_optional)?.map(|(start, end)| stride_domain::Run { start, end }))
            }

            async fn bump_stats_version(&mut self, user: stride_domain::UserId) -> $crate::RepoResult<()> {
                let query = sqlx::query("UPDATE users SET stats_version = stats_version + 1 WHERE id = $1").bind(user.as_uuid());
                let done = run!(self, query, execute)?;
                if done.rows_affected() == 0 { Err($crate::RepoError::NotFound) } else { Ok(()) }
            }

            async fn adjust_totals(
                &mut self,
                user: stride_domain::UserId,
                scope: stride_domain::StatsScope,
                delta: $crate::StatsTotals,
            ) -> $crate::RepoResult<()> {
                let query = sqlx::query(
                    "INSERT INTO stats_totals (user_id, scope, activity_count, distance_mm, duration_s) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (user_id, scope) DO UPDATE SET \
                     activity_count = stats_totals.activity_count + excluded.activity_count, \
                     distance_mm = stats_totals.distance_mm + excluded.distance_mm, \
                     duration_s = stats_totals.duration_s + excluded.duration_s",
                )
                .bind(user.as_uuid())
                .bind(scope.as_str())
                .bind(delta.activities)
                .bind(delta.distance_mm)
                .bind(delta.duration_s);
                run!(self, query, execute)?;
                Ok(())
            }

            async fn adjust_day(
                &mut self,
                user: stride_domain::UserId,
                scope: stride_domain::StatsScope,
                day: i32,
                delta: i32,
            ) -> $crate::RepoResult<i64> {
                let query = sqlx::query_as::<_, (i64,)>(
                    "INSERT INTO stats_days (user_id, scope, local_day, activity_count) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (user_id, scope, local_day) DO UPDATE \
                     SET activity_count = stats_days.activity_count + excluded.activity_count \
                     RETURNING CAST(activity_count AS BIGINT)",
                )
                .bind(user.as_uuid())
                .bind(scope.as_str())
                .bind(day)
                .bind(delta);
                let (count,) = run!(self, query, fetch_one)?;
                if count < 0 {
                    return Err($crate::RepoError::Corrupt(format!("day {day} of user {user} would count {count} activities")));
                }
                if count == 0 {
                    let query = sqlx::query("DELETE FROM stats_days WHERE user_id = $1 AND scope = $2 AND local_day = $3")
                        .bind(user.as_uuid())
                        .bind(scope.as_str())
                        .bind(day);
                    run!(self, query, execute)?;
                }
                Ok(count)
            }

            async fn run_ending_at(
                &mut self,
                user: stride_domain::UserId,
                scope: stride_domain::StatsScope,
                day: i32,
            ) -> $crate::RepoResult<Option<stride_domain::Run>> {
                let query = sqlx::query_as::<_, (i32, i32)>(
                    "SELECT start_day, end_day FROM stats_runs WHERE user_id = $1 AND scope = $2 AND end_day = $3",
                )
                .bind(user.as_uuid())
                .bind(scope.as_str())
                .bind(day);
                Ok(run!(self, query, fetch_optional)?.map(|(start, end)| stride_domain::Run { start, end }))
            }

            async fn run_starting_at(
                &mut self,
                user: stride_domain::UserId,
                scope: stride_domain::StatsScope,
                day: i32,
            ) -> $crate::RepoResult<Option<stride_domain::Run>> {
                let query = sqlx::query_as::<_, (i32, i32)>(
                    "SELECT start_day, end_day FROM stats_runs WHERE user_id = $1 AND scope = $2 AND start_day = $3",
                )
                .bind(user.as_uuid())
                .bind(scope.as_str())
                .bind(day);
                Ok(run!(self, query, fetch_optional)?.map(|(start, end)| stride_domain::Run { start, end }))
            }

            async fn apply_run_edit(
                &mut self,
                user: stride_domain::UserId,
                scope: stride_domain::StatsScope,
                edit: stride_domain::RunEdit,
            ) -> $crate::RepoResult<()> {
                let done = match edit {
                    stride_domain::RunEdit::Insert(run) => {
                        let query = sqlx::query(
                            "INSERT INTO stats_runs (user_id, scope, start_day, end_day, length) VALUES ($1, $2, $3, $4, $5)",
                        )
                        .bind(user.as_uuid())
                        .bind(scope.as_str())
                        .bind(run.start)
                        .bind(run.end)
                        .bind(run.days() as i32);
                        run!(self, query, execute)?
                    }
                    stride_domain::RunEdit::Delete(run) => {
                        let query = sqlx::query(
                            "DELETE FROM stats_runs WHERE user_id = $1 AND scope = $2 AND start_day = $3 AND end_day = $4",
                        )
                        .bind(user.as_uuid())
                        .bind(scope.as_str())
                        .bind(run.start)
                        .bind(run.end);
                        run!(self, query, execute)?
                    }
                    stride_domain::RunEdit::Replace { old, new } => {
                        let query = sqlx::query(
                            "UPDATE stats_runs SET start_day = $5, end_day = $6, length = $7 \
                             WHERE user_id = $1 AND scope = $2 AND start_day = $3 AND end_day = $4",
                        )
                        .bind(user.as_uuid())
                        .bind(scope.as_str())
                        .bind(old.start)
                        .bind(old.end)
                        .bind(new.start)
                        .bind(new.end)
                        .bind(new.days() as i32);
                        run!(self, query, execute)?
                    }
                };
                if done.rows_affected() == 1 {
                    Ok(())
                } else {
                    Err($crate::RepoError::Corrupt(format!("streak run edit {edit:?} matched {} rows", done.rows_affected())))
                }
            }

            async fn rebuild_stats(&mut self, user: stride_domain::UserId) -> $crate::RepoResult<()> {
                for table in [
                    "DELETE FROM stats_totals WHERE user_id = $1",
                    "DELETE FROM stats_days WHERE user_id = $1",
                    "DELETE FROM stats_runs WHERE user_id = $1",
                ] {
                    run!(self, sqlx::query(table).bind(user.as_uuid()), execute)?;
                }
                // The same statements as the backfill in migration 0002, for one user.
                let totals = sqlx::query(concat!(
                    "INSERT INTO stats_totals (user_id, scope, activity_count, distance_mm, duration_s) \
                     SELECT a.user_id, s.scope, count(*), sum(CAST(round(a.distance_m * 1000) AS BIGINT)), sum(a.duration_s) \
                     FROM activities a JOIN ",
                    scopes_join!(),
                    " WHERE a.user_id = $1 GROUP BY a.user_id, s.scope"
                ))
                .bind(user.as_uuid());
                run!(self, totals, execute)?;
                let days = sqlx::query(concat!(
                    "INSERT INTO stats_days (user_id, scope, local_day, activity_count) \
                     SELECT a.user_id, s.scope, a.local_day, count(*) FROM activities a JOIN ",
                    scopes_join!(),
                    " WHERE a.user_id = $1 GROUP BY a.user_id, s.scope, a.local_day"
                ))
                .bind(user.as_uuid());
                run!(self, days, execute)?;
                let runs = sqlx::query(
                    "INSERT INTO stats_runs (user_id, scope, start_day, end_day, length) \
                     SELECT user_id, scope, min(local_day), max(local_day), max(local_day) - min(local_day) + 1 \
                     FROM (SELECT user_id, scope, local_day, \
                                  local_day - ROW_NUMBER() OVER (PARTITION BY user_id, scope ORDER BY local_day) AS island \
                           FROM stats_days WHERE user_id = $1) days \
                     GROUP BY user_id, scope, island",
                )
                .bind(user.as_uuid());
                run!(self, runs, execute)?;
                Ok(())
            }

            async fn scan_count(&mut self, user: stride_domain::UserId, scope: stride_domain::StatsScope) -> $crate::RepoResult<i64> {
                let query = sqlx::query_as::<_, (i64,)>(concat!(
                    "SELECT CAST(count(*) AS BIGINT) FROM activities WHERE user_id = $1 AND ",
                    scope_filter!()
                ))
                .bind(user.as_uuid())
                .bind(scope.as_str());
                Ok(run!(self, query, fetch_one)?.0)
            }

            async fn scan_distance_mm(
                &mut self,
                user: stride_domain::UserId,
                scope: stride_domain::StatsScope,
            ) -> $crate::RepoResult<i64> {
                let query = sqlx::query_as::<_, (i64,)>(concat!(
                    "SELECT CAST(COALESCE(SUM(CAST(ROUND(distance_m * 1000) AS BIGINT)), 0) AS BIGINT) \
                     FROM activities WHERE user_id = $1 AND ",
                    scope_filter!()
                ))
                .bind(user.as_uuid())
                .bind(scope.as_str());
                Ok(run!(self, query, fetch_one)?.0)
            }

            async fn scan_duration_s(
                &mut self,
                user: stride_domain::UserId,
                scope: stride_domain::StatsScope,
            ) -> $crate::RepoResult<i64> {
                let query = sqlx::query_as::<_, (i64,)>(concat!(
                    "SELECT CAST(COALESCE(SUM(duration_s), 0) AS BIGINT) FROM activities WHERE user_id = $1 AND ",
                    scope_filter!()
                ))
                .bind(user.as_uuid())
                .bind(scope.as_str());
                Ok(run!(self, query, fetch_one)?.0)
            }

            async fn scan_active_days(
                &mut self,
                user: stride_domain::UserId,
                scope: stride_domain::StatsScope,
            ) -> $crate::RepoResult<Vec<i32>> {
                self.active_days_ascending(user, scope).await
            }

            /// The days come from the database, the rule from the domain: one definition of a
            /// streak, which the maintained runs are also checked against.
            async fn scan_streaks(
                &mut self,
                user: stride_domain::UserId,
                scope: stride_domain::StatsScope,
                today: i32,
            ) -> $crate::RepoResult<(u32, u32)> {
                let days = self.active_days_ascending(user, scope).await?;
                Ok(stride_domain::streaks_from_days(&days, today))
            }
        }

        impl $crate::UnitOfWork for $crate::SqlxUnitOfWork<$db> {
            /// Commits a write; for a read there is nothing to commit.
            async fn commit(mut self) -> $crate::RepoResult<()> {
                if self.transaction_open {
                    run!(self, sqlx::raw_sql("COMMIT"), execute)?;
                    self.transaction_open = false;
                }
                Ok(())
            }
        }
    };
}
