//! Paging for list calls: keyset pages. The continuation token is not opaque: it is the sort key
//! of the last item returned, in plain text (a name for warehouses, targets and activations, an id
//! for runs and dead letters, `<run_id> <row_number> <id>` for failed records). A client that
//! edits it only moves where the next page starts; it grants nothing the listing would not.

/// The page size used when a caller asks for 0.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// The largest page a caller gets, whatever it asks for.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items, in the listing's order.
    pub items: Vec<T>,
    /// Pass as `page_token` to get the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

/// What page of a listing to return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// Maximum items; 0 means [`DEFAULT_PAGE_SIZE`], capped at [`MAX_PAGE_SIZE`].
    pub page_size: u32,
    /// `next_page_token` of the previous page; empty for the first.
    pub page_token: String,
}

impl PageRequest {
    /// The effective page size.
    pub fn size(&self) -> i64 {
        let size = match self.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        i64::from(size)
    }

    /// Rows to fetch: one more than the page, to know whether another page follows.
    pub(crate) fn fetch(&self) -> i64 {
        self.size() + 1
    }
}

/// Cuts a fetched `rows` (of [`PageRequest::fetch`] length at most) into a page, the token
/// being `key` of the last item kept.
pub(crate) fn paginate<T>(
    mut rows: Vec<T>,
    request: &PageRequest,
    key: impl Fn(&T) -> String,
) -> Page<T> {
    let size = usize::try_from(request.size()).unwrap_or(usize::MAX);
    let next_page_token = if rows.len() > size {
        rows.truncate(size);
        rows.last().map(key)
    } else {
        None
    };
    Page {
        items: rows,
        next_page_token,
    }
}
