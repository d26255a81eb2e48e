//! The state machine against a model: random sequences of patches (moves,
//! repeats, progress in and out of range, NaN, messages) applied through
//! the Rust API, each answer and each published event compared with what
//! the model says (HTTP_API.md "Tasks").

use std::sync::OnceLock;
use std::time::Duration;

use hubbub_server::{Config, Node};
use hubbub_tasks::{TaskError, TaskPatch, TaskStatus, Tasks};
use proptest::prelude::*;

/// What the model says a patch does.
#[derive(Debug, PartialEq)]
enum Expect {
    BadRequest,
    Conflict,
    Unchanged,
    Event(&'static str),
}

#[derive(Debug, Clone)]
struct Model {
    status: TaskStatus,
    progress: f64,
    message: Option<String>,
}

fn done(s: TaskStatus) -> bool {
    matches!(s, TaskStatus::Completed | TaskStatus::Failed)
}

impl Model {
    fn apply(&mut self, p: &TaskPatch) -> Expect {
        use TaskStatus::*;
        if p.progress
            .is_some_and(|x| x.is_nan() || !(0.0..=1.0).contains(&x))
            || p.message
                .as_ref()
                .is_some_and(|m| m.chars().count() > 1_000)
        {
            return Expect::BadRequest;
        }
        let to = p.status.unwrap_or(self.status);
        let legal = to == self.status
            || matches!(
                (self.status, to),
                (Pending, Running) | (Running, Completed) | (Running, Failed)
            );
        if !legal {
            return Expect::Conflict;
        }
        let changes = to != self.status
            || p.progress.is_some_and(|x| x != self.progress)
            || p.message
                .as_ref()
                .is_some_and(|m| Some(m) != self.message.as_ref());
        if !changes {
            return Expect::Unchanged;
        }
        if done(self.status) {
            return Expect::Conflict;
        }
        self.status = to;
        if let Some(x) = p.progress {
            self.progress = x;
        }
        if let Some(m) = &p.message {
            self.message = Some(m.clone());
        }
        Expect::Event(match to {
            Completed => "task_completed",
            Failed => "task_failed",
            _ => "task_updated",
        })
    }
}

fn status() -> impl Strategy<Value = Option<TaskStatus>> {
    prop_oneof![
        Just(None),
        Just(Some(TaskStatus::Pending)),
        Just(Some(TaskStatus::Running)),
        Just(Some(TaskStatus::Completed)),
        Just(Some(TaskStatus::Failed)),
    ]
}

fn progress() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        3 => Just(None),
        3 => (0u32..=4).prop_map(|i| Some(i as f64 / 4.0)),
        1 => Just(Some(f64::NAN)),
        1 => Just(Some(-0.5)),
        1 => Just(Some(1.0001)),
        1 => Just(Some(f64::INFINITY)),
    ]
}

fn message() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(None),
        2 => "[ab]{0,2}".prop_map(Some),
        1 => Just(Some("x".repeat(1_001))),
    ]
}

fn patch() -> impl Strategy<Value = TaskPatch> {
    (status(), progress(), message()).prop_map(|(status, progress, message)| TaskPatch {
        status,
        progress,
        message,
    })
}

/// The next task event (`queue_status` passed over).
async fn next(sub: &mut hubbub_server::Subscription) -> (String, hubbub_tasks::Task) {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("an event in time")
            .unwrap()
            .unwrap();
        if e.event_type() != "queue_status" {
            return (e.event_type().to_owned(), e.data_as().unwrap());
        }
    }
}

struct World {
    rt: tokio::runtime::Runtime,
    node: Node,
    tasks: Tasks,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (node, tasks) = rt.block_on(async {
            let node = Node::new(Config::default()).unwrap();
            let tasks = hubbub_tasks::install(&node, Default::default())
                .unwrap()
                .unwrap();
            (node, tasks)
        });
        World { rt, node, tasks }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn patches_do_what_the_model_says(patches in proptest::collection::vec(patch(), 1..25)) {
        let w = world();
        w.rt.block_on(async {
            let mut sub = w.node.subscribe("tasks").await.unwrap();
            let t = w.tasks.create("prop", None).await.unwrap();
            let (ty, data) = next(&mut sub).await;
            assert_eq!((ty.as_str(), &data), ("task_created", &t));
            let mut model = Model { status: TaskStatus::Pending, progress: 0.0, message: None };
            let mut last = t.clone();
            for p in &patches {
                let want = model.apply(p);
                let got = w.tasks.update(&t.task_id, p.clone()).await;
                match (&want, got) {
                    (Expect::BadRequest, Err(TaskError::BadRequest(_))) => {}
                    (Expect::Conflict, Err(TaskError::Conflict(_))) => {}
                    (Expect::Unchanged, Ok(task)) => assert_eq!(task, last, "{p:?}"),
                    (Expect::Event(ev), Ok(task)) => {
                        assert_eq!(task.status, model.status);
                        assert_eq!(task.progress, model.progress);
                        assert_eq!(task.message, model.message);
                        assert!(task.updated_at >= last.updated_at);
                        let (ty, data) = next(&mut sub).await;
                        assert_eq!((ty.as_str(), &data), (*ev, &task), "{p:?}");
                        last = task;
                    }
                    (want, got) => panic!("{p:?}: model {want:?}, queue {got:?}"),
                }
                assert_eq!(w.tasks.get(&t.task_id).as_ref(), Some(&last));
            }
            // No event beyond those: the next one is a new task's.
            let s = w.tasks.create("sentinel", None).await.unwrap();
            let (ty, data) = next(&mut sub).await;
            assert_eq!((ty.as_str(), data.task_id), ("task_created", s.task_id));
        });
    }
}
