//! The smallest `lambda_http` function, built and started beside the real
//! ones by `make bench`, so their cold starts are compared with a baseline
//! measured in the same run on the same machine.

use lambda_http::{run, service_fn, Body, Error, Request, Response};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    run(service_fn(|_req: Request| async { Ok::<_, Error>(Response::new(Body::from("hello"))) })).await
}
