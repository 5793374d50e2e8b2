//! The list envelope every collection answers with: `data`, `page` and absolute
//! `links` that keep every filter (DESIGN.md §3), plus parsing the query against a
//! collection's field spec with errors that name the parameter.

use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, FieldError};
use super::extract::{QueryPairs, RequestUrl};
use crate::domain::list::{ListQuery, ListSpec};

/// Position of a page in the whole result.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageInfo {
    /// Page size asked for.
    pub size: u32,
    /// 1-based page number.
    pub number: u32,
    /// Items matching the filters, over all pages.
    pub total_elements: u64,
    /// Number of pages (at least 1).
    pub total_pages: u64,
}

/// Absolute links to other pages; `prev` and `next` are null at the ends.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageLinks {
    /// The first page.
    pub first: String,
    /// The page before, if any.
    pub prev: Option<String>,
    /// The page after, if any.
    pub next: Option<String>,
    /// The last page.
    pub last: String,
}

/// One page of a collection.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// The items of this page.
    pub data: Vec<T>,
    /// Where this page is.
    pub page: PageInfo,
    /// Links to other pages.
    pub links: PageLinks,
}

impl<T> Page<T> {
    /// Builds the envelope for items of the page `query` asked for.
    pub fn new(data: Vec<T>, total: u64, query: &ListQuery, url: &RequestUrl) -> Self {
        let size = u64::from(query.size);
        let total_pages = total.div_ceil(size).max(1);
        let number = u64::from(query.page);
        let link = |page: u64| {
            let mut pairs = query.kept_params.clone();
            pairs.push(("page".into(), page.to_string()));
            pairs.push(("size".into(), query.size.to_string()));
            url.with_query(&pairs)
        };
        Self {
            data,
            page: PageInfo {
                size: query.size,
                number: query.page,
                total_elements: total,
                total_pages,
            },
            links: PageLinks {
                first: link(1),
                prev: (number > 1).then(|| link((number - 1).min(total_pages))),
                next: (number < total_pages).then(|| link(number + 1)),
                last: link(total_pages),
            },
        }
    }

    /// Converts the items, keeping the page and links.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            data: self.data.into_iter().map(f).collect(),
            page: self.page,
            links: self.links,
        }
    }
}

/// Parses list parameters; every bad parameter is a 422 naming it.
pub fn parse_query(
    pairs: &QueryPairs,
    spec: &'static ListSpec,
    me: Option<&str>,
) -> Result<ListQuery, ApiError> {
    ListQuery::parse(&pairs.0, spec, me).map_err(|errors| {
        let detail = errors
            .iter()
            .map(|e| format!("query parameter '{}': {}", e.param, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        ApiError::unprocessable(
            detail,
            errors
                .into_iter()
                .map(|e| FieldError {
                    loc: format!("/query/{}", e.param),
                    msg: e.message,
                })
                .collect(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::list::{Field, FieldKind};

    static SPEC: ListSpec = ListSpec {
        fields: &[
            Field {
                name: "created_at",
                sql: "created_at",
                kind: FieldKind::Timestamp,
                sortable: true,
            },
            Field {
                name: "name",
                sql: "name",
                kind: FieldKind::Text,
                sortable: true,
            },
        ],
        default_sort: "-created_at",
        tie_breaker: "id",
        extra_params: &[],
    };

    fn url() -> RequestUrl {
        RequestUrl {
            base: "http://h:1".into(),
            path: "/api/v1/templates".into(),
        }
    }

    fn query(pairs: &[(&str, &str)]) -> ListQuery {
        let pairs = QueryPairs(
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        );
        parse_query(&pairs, &SPEC, None).unwrap()
    }

    #[test]
    fn links_keep_every_filter_and_stop_at_the_ends() {
        let q = query(&[("name", "vm & co"), ("page", "2"), ("size", "5")]);
        let page: Page<u8> = Page::new(vec![], 12, &q, &url());
        assert_eq!(page.page.total_pages, 3);
        assert_eq!(
            page.links.next.as_deref(),
            Some("http://h:1/api/v1/templates?name=vm+%26+co&page=3&size=5")
        );
        assert_eq!(
            page.links.prev.as_deref(),
            Some("http://h:1/api/v1/templates?name=vm+%26+co&page=1&size=5")
        );
        let last = Page::<u8>::new(vec![], 12, &query(&[("page", "3")]), &url());
        assert!(last.links.next.is_none());
        assert!(Page::<u8>::new(vec![], 12, &query(&[]), &url())
            .links
            .prev
            .is_none());
    }

    #[test]
    fn an_empty_result_still_has_one_page() {
        let page: Page<u8> = Page::new(vec![], 0, &query(&[]), &url());
        assert_eq!((page.page.total_pages, page.page.total_elements), (1, 0));
        assert_eq!(page.links.first, page.links.last);
    }

    #[test]
    fn bad_parameters_are_unprocessable_and_named() {
        let pairs = QueryPairs(vec![("size".into(), "1000".into())]);
        let err = parse_query(&pairs, &SPEC, None).unwrap_err();
        assert_eq!(err.status().as_u16(), 422);
        assert_eq!(err.errors()[0].loc, "/query/size");
        assert!(err.detail().contains("size"));
    }
}
