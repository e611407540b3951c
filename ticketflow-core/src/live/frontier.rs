//! Which events read so far are safe to send: the hold-back rule.
//!
//! A seq is taken when an event is inserted and becomes visible when its transaction commits,
//! so a reader can see seq 11 while seq 10 is still to commit. Sending 11 and moving on would
//! lose 10. The frontier sends an event only when no event below it can still appear:
//!
//! - an event right after the last one sent (no gap) is safe: every seq below it is settled;
//! - after a gap, the events read are held back, and the feed notes who held the event
//!   table's write lock just after that read's snapshot. A transaction takes the lock before
//!   it takes a seq and keeps it to its end, so every seq below the newest one the read saw
//!   belongs to a transaction that was visible to the read, or ended before the lock was
//!   looked at, or is among those noted. Once all of those have ended — checked before a
//!   later read's snapshot — that later read sees every such seq that committed: everything
//!   up to the newest seq the first read saw is settled, and a gap that remains is permanent
//!   (a rollback, a conflict, a crash);
//! - a store whose single writer commits in seq order (SQLite) settles everything it reads.

use crate::store::{FeedRead, InFlight, TicketEvent};

/// The feed's position: the last seq sent, how far the sequence is known to be settled, and
/// the read whose writers it waits for, if it holds events back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontier {
    /// The last seq sent: every seq at or below it that will ever commit has been sent.
    through: i64,
    /// Every seq at or below it that will ever commit is visible to the reads from now on (it
    /// can be ahead of `through` when a read stopped at its limit).
    settled: i64,
    /// Events after a gap wait for these writers to end.
    horizon: Option<Horizon>,
}

/// A read that saw a gap.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Horizon {
    /// Who held the write lock just after that read's snapshot.
    writers: Vec<String>,
    /// The newest seq that read saw: settled once those writers have ended.
    seq: i64,
}

impl Frontier {
    /// A frontier after `through`, which must be settled.
    pub fn at(through: i64) -> Self {
        Self {
            through,
            settled: through,
            horizon: None,
        }
    }

    /// The last seq sent: every seq at or below it that will ever commit has been.
    pub fn through(&self) -> i64 {
        self.through
    }

    /// True while events are held back (the feed reads again soon, without waiting for a
    /// notice: the writers it waits for may write no event at all).
    pub fn holding(&self) -> bool {
        self.horizon.is_some()
    }

    /// The writers the next read must check for before its snapshot.
    pub fn waiting_for(&self) -> &[String] {
        self.horizon.as_ref().map_or(&[], |h| h.writers.as_slice())
    }

    /// Takes a read of the events after [`through`](Self::through), made with
    /// [`waiting_for`](Self::waiting_for), and returns those now safe to send, in seq order;
    /// the rest wait for a later read.
    pub fn advance(&mut self, read: FeedRead) -> Vec<TicketEvent> {
        let FeedRead {
            events,
            newest,
            in_flight,
            waited_for_ended,
        } = read;
        if waited_for_ended && let Some(horizon) = self.horizon.take() {
            self.settled = self.settled.max(horizon.seq);
        }
        if in_flight == InFlight::Nothing {
            self.settled = self.settled.max(newest);
        }
        let mut safe = Vec::new();
        let mut held = false;
        for event in events {
            if event.seq <= self.through {
                continue;
            }
            if event.seq <= self.settled || event.seq == self.through + 1 {
                self.through = event.seq;
                safe.push(event);
            } else {
                held = true;
                break;
            }
        }
        if let InFlight::Writers(writers) = in_flight
            && held
            && self.horizon.is_none()
        {
            self.horizon = Some(Horizon { writers, seq: newest });
        }
        safe
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;

    fn event(seq: i64) -> TicketEvent {
        TicketEvent {
            id: Uuid::new_v4(),
            ticket_id: Uuid::nil(),
            seq,
            event_type: "created".into(),
            step_name: None,
            payload: serde_json::json!({}),
            request_id: None,
            created_at: Utc::now(),
        }
    }

    /// A read after `after` of the committed `seqs`, with `writers` holding the lock after it,
    /// and whether the writers waited for had ended before it.
    fn read(after: i64, seqs: &[i64], writers: &[&str], ended: bool) -> FeedRead {
        FeedRead {
            events: seqs.iter().copied().filter(|s| *s > after).map(event).collect(),
            newest: seqs.iter().copied().max().unwrap_or(after),
            in_flight: InFlight::Writers(writers.iter().map(|w| (*w).to_owned()).collect()),
            waited_for_ended: ended,
        }
    }

    fn seqs(events: &[TicketEvent]) -> Vec<i64> {
        events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn consecutive_events_go_at_once_even_with_writers_in_flight() {
        let mut frontier = Frontier::at(0);
        assert_eq!(seqs(&frontier.advance(read(0, &[1, 2, 3], &["3/7"], true))), [1, 2, 3]);
        assert_eq!(frontier.through(), 3);
        assert!(!frontier.holding());
    }

    #[test]
    fn events_after_a_gap_wait_for_the_writers_seen_with_them() {
        let mut frontier = Frontier::at(0);
        // Seq 2 belongs to writer 3/7, still running; 3 committed.
        assert_eq!(seqs(&frontier.advance(read(0, &[1, 3], &["3/7"], true))), [1]);
        assert!(frontier.holding());
        assert_eq!(frontier.waiting_for(), ["3/7"]);
        // 3/7 still runs: nothing more, however often the feed reads.
        assert!(frontier.advance(read(1, &[1, 3, 4], &["3/7", "4/2"], false)).is_empty());
        // 3/7 committed seq 2 and ended before the next snapshot: all of it goes, in order.
        assert_eq!(
            seqs(&frontier.advance(read(1, &[1, 2, 3, 4], &["4/2"], true))),
            [2, 3, 4]
        );
        assert!(!frontier.holding());
    }

    #[test]
    fn a_gap_that_never_fills_is_passed_once_its_writers_end() {
        let mut frontier = Frontier::at(10);
        // Seq 11 is rolled back by a writer that had not ended when the lock was looked at.
        assert!(frontier.advance(read(10, &[12, 13], &["5/1"], true)).is_empty());
        // It ended; another took seq 15 meanwhile, which stays behind the new gap at 14.
        assert_eq!(
            seqs(&frontier.advance(read(10, &[12, 13, 15], &["6/1"], true))),
            [12, 13]
        );
        assert!(frontier.holding(), "15 waits for 6/1");
        assert_eq!(seqs(&frontier.advance(read(13, &[12, 13, 15], &[], true))), [15]);
    }

    #[test]
    fn a_read_that_saw_no_writer_still_waits_one_read() {
        // Nobody held the lock just after the snapshot, but a writer may have committed between
        // the two: its seq shows in the next read, not this one.
        let mut frontier = Frontier::at(0);
        assert!(frontier.advance(read(0, &[2], &[], true)).is_empty());
        assert_eq!(seqs(&frontier.advance(read(0, &[1, 2], &[], true))), [1, 2]);
    }

    #[test]
    fn a_store_with_one_writer_settles_everything_it_reads() {
        let mut sqlite = Frontier::at(0);
        let one_writer = FeedRead {
            in_flight: InFlight::Nothing,
            ..read(0, &[3, 7], &[], true)
        };
        assert_eq!(seqs(&sqlite.advance(one_writer)), [3, 7]);
    }

    #[test]
    fn events_already_sent_are_never_sent_again() {
        let mut frontier = Frontier::at(5);
        assert_eq!(seqs(&frontier.advance(read(0, &[4, 5, 6], &[], true))), [6]);
    }

    #[test]
    fn a_horizon_holds_through_the_newest_seq_seen_even_past_a_reads_limit() {
        let mut frontier = Frontier::at(0);
        let page = |after: i64, seqs: &[i64], ended: bool| FeedRead {
            newest: 8,
            ..read(after, seqs, &["2/9"], ended)
        };
        assert!(frontier.advance(page(0, &[2, 3], true)).is_empty());
        // 2/9 ended: 2 to 8 are settled; the read returns its first page.
        assert_eq!(seqs(&frontier.advance(page(0, &[2, 3, 4], true))), [2, 3, 4]);
        // Another writer runs now, but 7 (after the gap at 6) is already known settled.
        assert_eq!(seqs(&frontier.advance(page(4, &[5, 7, 8], false))), [5, 7, 8]);
    }
}
