//! Power BI: the second integration behind the seam (issue #14).

pub(crate) mod m;
