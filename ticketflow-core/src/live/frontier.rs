//! Which events read so far are safe to send: the hold-back rule.
//!
//! A seq is taken when an event is inserted and becomes visible when its transaction commits,
//! so a reader can see seq 11 while seq 10 is still to commit. Sending 11 and moving on would
//! lose 10. The frontier sends an event only when no event below it can still appear:
//!
//! - an event right after the last one sent (no gap) is safe: every seq below it is settled;
//! - after a gap, the events read are held back until every transaction that was in flight
//!   when they were read has ended (a later snapshot's `xmin` reaches that read's `xmax`).
//!   Then the gap is permanent (a rollback, a conflict, a crash) or filled, and everything up
//!   to the newest event that read saw is safe. A transaction that starts later takes its seqs
//!   later, above all of them: migration 0011 makes a transaction hold its id before it takes
//!   a seq, so one that took a seq is always among those in flight;
//! - a snapshot with nothing in flight settles everything it saw.

use crate::store::{FeedRead, InFlight, TicketEvent};

/// The feed's position: the last seq sent, how far the sequence is known to be settled, and
/// the read whose in-flight transactions it waits for, if it holds events back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontier {
    /// The last seq sent: every seq at or below it that will ever commit has been sent.
    through: i64,
    /// Every seq at or below it that will ever commit had committed when last read (it can be
    /// ahead of `through` when a read stopped at its limit).
    settled: i64,
    /// Events after a gap wait for this read's transactions to end.
    horizon: Option<Horizon>,
}

/// A read that saw a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Horizon {
    /// The read's first unassigned transaction id: once the oldest transaction in flight is at
    /// or past it, every transaction that read saw running has ended.
    xmax: u64,
    /// The newest seq that read saw: settled once those transactions have ended.
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
    /// notice: the transactions it waits for may write no event at all).
    pub fn holding(&self) -> bool {
        self.horizon.is_some()
    }

    /// Takes a read of the events after [`through`](Self::through) and returns those now safe
    /// to send, in seq order; the rest wait for a later read.
    pub fn advance(&mut self, read: FeedRead) -> Vec<TicketEvent> {
        let FeedRead {
            events,
            newest,
            in_flight,
        } = read;
        match in_flight {
            InFlight::Nothing => self.settle(newest),
            InFlight::Transactions { xmin, xmax } if xmin >= xmax => self.settle(newest),
            InFlight::Transactions { xmin, .. } => {
                if let Some(horizon) = self.horizon.filter(|h| xmin >= h.xmax) {
                    self.horizon = None;
                    self.settle(horizon.seq);
                }
            }
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
        if let InFlight::Transactions { xmax, .. } = in_flight
            && held
            && self.horizon.is_none()
        {
            self.horizon = Some(Horizon { xmax, seq: newest });
        }
        safe
    }

    fn settle(&mut self, seq: i64) {
        self.settled = self.settled.max(seq);
        if self.horizon.is_some_and(|h| h.seq <= self.settled) {
            self.horizon = None;
        }
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

    fn read(after: i64, seqs: &[i64], xmin: u64, xmax: u64) -> FeedRead {
        FeedRead {
            events: seqs.iter().copied().filter(|s| *s > after).map(event).collect(),
            newest: seqs.iter().copied().max().unwrap_or(after),
            in_flight: InFlight::Transactions { xmin, xmax },
        }
    }

    fn seqs(events: &[TicketEvent]) -> Vec<i64> {
        events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn consecutive_events_go_at_once_even_with_transactions_in_flight() {
        let mut frontier = Frontier::at(0);
        assert_eq!(seqs(&frontier.advance(read(0, &[1, 2, 3], 100, 105))), [1, 2, 3]);
        assert_eq!(frontier.through(), 3);
        assert!(!frontier.holding());
    }

    #[test]
    fn events_after_a_gap_wait_until_the_gap_can_no_longer_fill() {
        let mut frontier = Frontier::at(0);
        // Seq 2 is taken by transaction 100, still running; 3 committed.
        assert_eq!(seqs(&frontier.advance(read(0, &[1, 3], 100, 102))), [1]);
        assert!(frontier.holding());
        // 100 still runs: nothing more, however often the feed reads.
        assert_eq!(
            seqs(&frontier.advance(read(1, &[1, 3, 4], 100, 103))),
            Vec::<i64>::new()
        );
        // 100 commits seq 2: 2 fills the gap, and 3 and 4 follow without one.
        assert_eq!(seqs(&frontier.advance(read(1, &[1, 2, 3, 4], 103, 104))), [2, 3, 4]);
        assert!(!frontier.holding());
    }

    #[test]
    fn a_gap_that_never_fills_is_passed_once_its_transactions_end() {
        let mut frontier = Frontier::at(10);
        // Seq 11 rolled back; 102 is running (it may hold 11 for all the reader knows).
        assert_eq!(
            seqs(&frontier.advance(read(10, &[12, 13], 102, 104))),
            Vec::<i64>::new()
        );
        // 102 ended (rolled back) but 104 started meanwhile and took seq 15.
        assert_eq!(seqs(&frontier.advance(read(10, &[12, 13, 14], 104, 106))), [12, 13, 14]);
        assert_eq!(frontier.through(), 14);
    }

    #[test]
    fn a_snapshot_with_nothing_in_flight_settles_everything() {
        let mut frontier = Frontier::at(0);
        assert_eq!(seqs(&frontier.advance(read(0, &[2, 5, 9], 200, 200))), [2, 5, 9]);
        let mut sqlite = Frontier::at(0);
        let sqlite_read = FeedRead {
            in_flight: InFlight::Nothing,
            ..read(0, &[3, 7], 0, 0)
        };
        assert_eq!(seqs(&sqlite.advance(sqlite_read)), [3, 7]);
    }

    #[test]
    fn events_already_sent_are_never_sent_again() {
        let mut frontier = Frontier::at(5);
        assert_eq!(seqs(&frontier.advance(read(0, &[4, 5, 6], 9, 9))), [6]);
    }

    #[test]
    fn a_horizon_holds_through_the_newest_seq_seen_even_past_a_reads_limit() {
        let mut frontier = Frontier::at(0);
        let page = |after: i64, seqs: &[i64], xmin: u64, xmax: u64| FeedRead {
            newest: 8,
            ..read(after, seqs, xmin, xmax)
        };
        assert!(frontier.advance(page(0, &[2, 3], 50, 52)).is_empty());
        // Transaction 50 ended: 2 to 8 are settled; the read returns its first page.
        assert_eq!(seqs(&frontier.advance(page(0, &[2, 3, 4], 52, 60))), [2, 3, 4]);
        // Another transaction runs now, but 7 (after the gap at 6) is already known settled.
        assert_eq!(seqs(&frontier.advance(page(4, &[5, 7, 8], 55, 60))), [5, 7, 8]);
    }
}
